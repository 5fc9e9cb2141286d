#!/usr/bin/env bash
# Builds the README's example program against an installed dso, once with find_package(dso) and
# once with pkg-config, and runs it on a shipped task.
set -euo pipefail
src="$1"
build="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# the example is the C block between the markers in README.md
awk '/<!-- example-begin -->/{on=1; next} /<!-- example-end -->/{on=0} on' "$src/README.md" \
  | sed '/^```/d' > "$work/example.c"
lines=$(wc -l < "$work/example.c")
[ "$lines" -ge 10 ] || { echo "README example not found"; exit 1; }
echo "README example: $lines lines"
mkdir -p "$work/proj"
cat > "$work/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(example C)
find_package(dso REQUIRED)
add_executable(example $work/example.c)
target_link_libraries(example PRIVATE dso::dso)
CM
cmake -S "$work/proj" -B "$work/proj/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/proj/build" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/proj/build/example" "$src/tasks/pendulum_sysid.json"
# the same program through pkg-config
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" \
  cc -std=c11 -o "$work/example_pc" "$work/example.c" \
  $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs dso)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/example_pc" "$src/tasks/pendulum_sysid.json"
echo "1 passed, 0 failed"
