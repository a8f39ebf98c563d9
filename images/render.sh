#!/usr/bin/env bash
# Regenerate every diagram: images/NAME.png from images/NAME.dot.
#
#   bash images/render.sh      (from anywhere; needs Graphviz's `dot`)
#
# All six are drawn at the same scale (DPI), so that their text is the same
# size on the page; at 96 dpi they are at most about 800 px wide, which GitHub
# shows without shrinking.
set -euo pipefail

DPI=96

if ! command -v dot >/dev/null 2>&1; then
    echo "error: Graphviz's 'dot' is not installed: apt-get install graphviz" \
        "(macOS: brew install graphviz)" >&2
    exit 1
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # the repository's top folder

shopt -s nullglob
sources=(images/*.dot)
if [ ${#sources[@]} -eq 0 ]; then
    echo "error: no images/*.dot files to render" >&2
    exit 1
fi

for source in "${sources[@]}"; do
    name=$(basename "$source" .dot)
    dot -Tpng -Gdpi="$DPI" -o "images/$name.png" "images/$name.dot"
    echo "images/$name.png"
done
