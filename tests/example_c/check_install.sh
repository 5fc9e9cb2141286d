#!/usr/bin/env bash
# Checks the installed dso (ctests example_c and readme_example):
#   check_install.sh SOURCE_DIR BUILD_DIR [README.md]
# installs the build into BUILD_DIR/test-output/example_c/prefix (cmake --install), then
#   - without README.md: builds tests/example_c/example.c with find_package(dso) (dso::dso and
#     dso::static) and with pkg-config (shared, and static with --static), runs each on shipped
#     tasks; checks that every installed header compiles alone as C11 and as C++, includes only
#     standard C headers and dso/ headers, that only include/dso/*.h is installed, and that the
#     dynamic symbols libdso.so exports are exactly the DSO_API functions of the headers;
#   - with README.md: builds the first ```c block of the README the same two ways and runs it.
# Everything is written under BUILD_DIR/test-output/example_c.
set -euo pipefail
src="$(cd "$1" && pwd)"
build="$(cd "$2" && pwd)"
readme="${3:-}"
out="$build/test-output/example_c"
prefix="$out/prefix"
CC="${CC:-cc}"
CXX="${CXX:-}"
if [ -z "$CXX" ]; then
  for c in g++ clang++ c++; do
    if command -v "$c" >/dev/null; then CXX="$c"; break; fi
  done
fi
npass=0
nfail=0
ok() { echo "ok: $*"; npass=$((npass + 1)); }
bad() { echo "FAIL: $*"; nfail=$((nfail + 1)); }

mkdir -p "$out"
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >"$out/install.log"
lib="$(dirname "$(find "$prefix" -name 'libdso.so' -print -quit)")"
[ -f "$lib/libdso.so" ] || { echo "FAIL: no libdso.so under $prefix"; exit 1; }
pcpath="$lib/pkgconfig"

if [ -n "$readme" ]; then
  work="$out/readme"
  rm -rf "$work"
  mkdir -p "$work"
  # the first ```c block of the README
  awk '/^```c[[:space:]]*$/ && !done {on = 1; next} on && /^```/ {on = 0; done = 1} on' \
    "$readme" >"$work/example.c"
  lines=$(wc -l <"$work/example.c")
  if [ "$lines" -lt 5 ]; then
    echo "FAIL: no \`\`\`c block in $readme"
    exit 1
  fi
  echo "README example: $lines lines"
  program="$work/example.c"
  tasks=("$src/tasks/cartpole_swingup.json")
else
  work="$out/example"
  rm -rf "$work"
  mkdir -p "$work"
  program="$src/tests/example_c/example.c"
  tasks=("$src/tasks/cartpole_swingup.json" "$src/tasks/pendulum_design.json")
  # a fit task needs its recording (../shared/data); run it when the data are there
  if "$prefix/bin/dso" check "$src/tasks/pendulum_sysid.json" >/dev/null 2>&1; then
    tasks+=("$src/tasks/pendulum_sysid.json")
  else
    echo "note: tasks/pendulum_sysid.json not run (its data are not available)"
  fi
fi

run_all() {  # run_all NAME PROGRAM LD_LIBRARY_PATH: runs PROGRAM on every task
  local name="$1" exe="$2" ldpath="$3"
  for t in "${tasks[@]}"; do
    if LD_LIBRARY_PATH="$ldpath" "$exe" "$t" >"$work/$name.$(basename "$t" .json).out" 2>&1; then
      ok "$name $(basename "$t")"
    else
      bad "$name $(basename "$t")"
      cat "$work/$name.$(basename "$t" .json).out"
    fi
  done
}

# find_package(dso): dso::dso and dso::static
if cmake -S "$src/tests/example_c" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
     -DCMAKE_C_COMPILER="$CC" -DDSO_EXAMPLE_SOURCE="$program" >"$work/cmake.log" 2>&1 &&
   cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1; then
  ok "find_package(dso) build"
  # the program runs on the installed library (found through the build RPATH)
  # (ldd's output in a variable: grep -q closing the pipe early would fail it under pipefail)
  deps="$(ldd "$work/cmake/example")"
  if [[ "$deps" == *"$lib/libdso.so"* ]]; then
    ok "example uses the installed libdso.so"
  else
    bad "example does not use $lib/libdso.so"
    echo "$deps"
  fi
  run_all cmake "$work/cmake/example" ""
  if [ -x "$work/cmake/example_static" ]; then
    run_all cmake_static "$work/cmake/example_static" ""
  else
    bad "dso::static was not defined by find_package(dso)"
  fi
else
  bad "find_package(dso) build"
  cat "$work/cmake.log"
fi

# pkg-config: shared, and static with --static
export PKG_CONFIG_PATH="$pcpath"
if flags=$(pkg-config --cflags --libs dso) &&
   "$CC" -std=c11 -Wall -Wextra -o "$work/example_pc" "$program" $flags -lm \
     >"$work/pc.log" 2>&1; then
  ok "pkg-config build ($flags)"
  run_all pkgconfig "$work/example_pc" "$lib"
else
  bad "pkg-config build"
  cat "$work/pc.log" || true
fi
if sflags=$(pkg-config --static --cflags --libs dso) &&
   "$CC" -std=c11 -o "$work/example_pc_static" "$program" ${sflags//-ldso/-l:libdso.a} -lm \
     >"$work/pc_static.log" 2>&1; then
  ok "pkg-config --static build"
  run_all pkgconfig_static "$work/example_pc_static" ""
else
  bad "pkg-config --static build"
  cat "$work/pc_static.log" || true
fi

if [ -z "$readme" ]; then
  # only include/dso/*.h is installed, and every one of them
  want=$(cd "$src/include" && find dso -type f | sort)
  have=$(cd "$prefix/include" && find . -type f | sed 's|^\./||' | sort)
  if [ "$want" = "$have" ]; then
    ok "installed headers are include/dso/*.h ($(echo "$have" | wc -l) files)"
  else
    bad "installed headers differ from include/dso/*.h"
    diff <(echo "$want") <(echo "$have") || true
  fi

  # each header alone, as C11 and as C++, and its includes
  std_headers=" assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h limits.h \
locale.h math.h setjmp.h signal.h stdalign.h stdarg.h stdatomic.h stdbool.h stddef.h stdint.h \
stdio.h stdlib.h stdnoreturn.h string.h tgmath.h threads.h time.h uchar.h wchar.h wctype.h "
  for h in "$prefix"/include/dso/*.h; do
    name="dso/$(basename "$h")"
    printf '#include <%s>\n#include <%s>\nint dso_header_check_;\n' "$name" "$name" \
      >"$work/header.c"
    if "$CC" -std=c11 -Wall -Wextra -pedantic -Werror -I"$prefix/include" -fsyntax-only \
         "$work/header.c" 2>"$work/header.log"; then
      ok "$name compiles alone as C11"
    else
      bad "$name as C11"
      cat "$work/header.log"
    fi
    if [ -n "$CXX" ]; then
      if "$CXX" -x c++ -Wall -Wextra -pedantic -Werror -I"$prefix/include" -fsyntax-only \
           "$work/header.c" 2>"$work/header.log"; then
        ok "$name compiles alone as C++"
      else
        bad "$name as C++"
        cat "$work/header.log"
      fi
    fi
    while read -r inc; do
      if [[ "$inc" =~ ^\"dso/[a-z_]+\.h\"$ ]]; then
        [ -f "$prefix/include/${inc//\"/}" ] || bad "$name includes $inc, which is not installed"
      elif [[ "$inc" =~ ^\<([a-z_]+\.h)\>$ ]] && [[ "$std_headers" == *" ${BASH_REMATCH[1]} "* ]]; then
        :
      else
        bad "$name includes $inc (neither a standard C header nor dso/)"
      fi
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"][^>"]*[>"]\).*/\1/p' "$h")
  done

  # exported dynamic symbols = DSO_API functions of the installed headers
  api=$(for h in "$prefix"/include/dso/*.h; do
          sed -e 's://.*$::' -e '/^[[:space:]]*#/d' "$h"
        done | tr '\n' ' ' | grep -oE 'DSO_API[^;(]*\(' |
        sed -E 's/.*[^A-Za-z0-9_]([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*\($/\1/' | sort -u)
  exported=$(nm -D --defined-only "$lib/libdso.so" |
             awk '$3 !~ /^(_edata|_end|__bss_start|_init|_fini)$/ {print $3}' | sort -u)
  napi=$(echo "$api" | grep -c .)
  if [ "$api" = "$exported" ]; then
    ok "libdso.so exports exactly the $napi DSO_API functions of include/dso/"
  else
    bad "libdso.so exports differ from the DSO_API functions (< declared only, > exported only)"
    diff <(echo "$api") <(echo "$exported") || true
  fi
fi

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
