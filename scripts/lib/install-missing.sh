# Sourced by the test scripts. `install_missing WHO PKG...` installs the Debian packages
# listed (nothing when the list is empty) as root through apt-get, or says which are needed
# and exits 2.
install_missing() {
  local who=$1
  shift
  [ $# -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "$who: needs $* (Debian/Ubuntu: sudo apt-get install $*)" >&2
    exit 2
  fi
}
