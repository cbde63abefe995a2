#!/bin/sh
# Install the Debian packages smugoauth builds, tests and benchmarks with.
# Quiet no-op when they are all there; needs root (or sudo) otherwise.
set -e
PKGS="lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev pkg-config gcc make
lua-socket lua-cjson lua-sql-sqlite3 lua-busted lua-check luarocks lua-sec lua-ldoc lua-markdown lua-cqueues lua-luv
python3 python3-oauthlib python3-requests-oauthlib python3-bottle python3-jwt python3-cryptography
openssl curl valgrind wrk strace clang libclang-rt-14-dev chromium gnuplot-nox
zsh bash-completion man-db groff-base"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node and npm (for the browser test): the machine's own Node.js if it has one
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
