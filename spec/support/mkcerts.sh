#!/bin/sh
# Make a throw-away test PKI in DIR (default: a new temp dir; its path is printed):
#   ca.pem / ca.key            the test CA (trust this one with ca_file)
#   server.pem / server.key    127.0.0.1 + localhost, signed by the CA
#   wronghost.pem / .key       CN/SAN "wrong.example", signed by the CA
#   expired.pem / .key         127.0.0.1, signed by the CA, expired
#   untrusted.pem / .key       127.0.0.1, self-signed (no CA trusts it)
set -eu
DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/smugoauth-pki.XXXXXX")}
mkdir -p "$DIR"
cd "$DIR"
q() { openssl "$@" >/dev/null 2>&1; }
q req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
  -subj "/CN=smugoauth test CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign"
leaf() {  # name cn san days_or_expired
  q req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$3" > "$1.ext"
  if [ "$4" = expired ]; then   # openssl ca can set dates in the past
    mkdir -p ca.db && : > ca.db/index.txt && echo 01 > ca.db/serial
    printf '%s\n' '[ca]' 'default_ca=d' '[d]' 'dir=ca.db' 'database=ca.db/index.txt' \
      'new_certs_dir=ca.db' 'serial=ca.db/serial' 'default_md=sha256' 'policy=p' \
      'copy_extensions=none' '[p]' 'commonName=supplied' > ca.cnf
    q ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in "$1.csr" -out "$1.pem" \
      -startdate 20200101000000Z -enddate 20200201000000Z -extfile "$1.ext" -notext
    rm -rf ca.db ca.cnf
  else
    q x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
      -days "$4" -extfile "$1.ext"
  fi
  rm -f "$1.csr" "$1.ext"
}
leaf server 127.0.0.1 "IP:127.0.0.1,DNS:localhost" 30
leaf wronghost wrong.example "DNS:wrong.example" 30
leaf expired 127.0.0.1 "IP:127.0.0.1,DNS:localhost" expired
q req -x509 -newkey rsa:2048 -nodes -keyout untrusted.key -out untrusted.pem -days 30 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost"
echo "$DIR"
