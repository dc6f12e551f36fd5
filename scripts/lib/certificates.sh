# Certificates for the tests' services, signed by a private CA made for the purpose.
# Source it, then:
#   test_certificates DIR         DIR/ca.{crt,key} and DIR/server.{crt,key} (for 127.0.0.1),
#                                 made once: an existing DIR/server.crt is kept
#   test_client_certificate DIR NAME
#                                 DIR/client.{crt,key}, common name NAME, signed by DIR's CA

# shellcheck source=debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

test_certificates() {
  local dir=$1
  [ -f "$dir/server.crt" ] && return 0
  debian_install openssl openssl || return 1
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=MyMonit test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null &&
    test_signed "$dir" server "127.0.0.1" \
      'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
}

test_client_certificate() {
  test_signed "$1" client "$2" 'extendedKeyUsage=clientAuth\n'
}

# test_signed DIR FILE COMMON_NAME EXTENSIONS: DIR/FILE.{crt,key} signed by DIR's CA.
test_signed() {
  local dir=$1 file=$2
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$3" \
    -keyout "$dir/$file.key" -out "$dir/$file.csr" 2>/dev/null &&
    printf '%b' "$4" > "$dir/$file.ext" &&
    openssl x509 -req -in "$dir/$file.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 30 -extfile "$dir/$file.ext" -out "$dir/$file.crt" 2>/dev/null
}
