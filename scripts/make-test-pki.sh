#!/bin/sh
# Makes the test PKI in DIR with openssl: a root CA (RSA), an intermediate CA (ECDSA P-256)
# under it, gateway certificates, and a second, unrelated CA with a certificate that claims a
# gateway's name. The control's unit tests use a copy of its output
# (control/src/ike/fixtures/pki); the strongSwan interop tests run it afresh.
#
#   gw1  RSA 2048, issued by the intermediate, key PKCS#8  SAN gw1.example, admin@gw1.example, 192.0.2.1
#   gw2  ECDSA P-256, issued by the root, key SEC1         SAN gw2.example, 192.0.2.2
#   gw3  ECDSA P-384, issued by the intermediate, PKCS#8   SAN gw3.example
#   gw4  RSA 3072, issued by the root, key PKCS#1          SAN gw4.example
#   rogue ECDSA P-256, issued by the other CA              SAN gw2.example (same subject as gw2)
#
# gwN.pem holds the certificate and, when issued by the intermediate, the intermediate after
# it (the chain a gateway sends); gwN.crt the certificate alone. Keys are mode 0600.
# Usage: scripts/make-test-pki.sh DIR [DAYS]
set -eu
dir=$1
days=${2:-36500}
mkdir -p "$dir"
cd "$dir"
umask 077
ssl() { openssl "$@" 2>/dev/null; }
# ext.cnf's [ee] reads the subjectAltName from SAN; openssl wants it set whatever the section.
export SAN=DNS:unused

cat >ext.cnf <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ee]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${ENV::SAN}
EOF

# ca NAME SUBJECT KEYARGS [ISSUER]
ca() {
    ssl genpkey $3 -out "$1.key"
    if [ -z "${4:-}" ]; then
        ssl req -x509 -new -key "$1.key" -subj "$2" -days "$days" -sha256 \
            -config ext.cnf -extensions ca -out "$1.crt"
    else
        ssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
        ssl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" \
            -CAcreateserial -days "$days" -sha256 -extfile ext.cnf -extensions ca -out "$1.crt"
    fi
}

# ee NAME SUBJECT SAN ISSUER KEYARGS
ee() {
    ssl genpkey $5 -out "$1.key"
    ssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    SAN=$3 ssl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" -CAcreateserial \
        -days "$days" -sha256 -extfile ext.cnf -extensions ee -out "$1.crt"
    cat "$1.crt" >"$1.pem"
    [ "$4" = int ] && cat int.crt >>"$1.pem"
    return 0
}

rsa2048="-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
p256="-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
p384="-algorithm EC -pkeyopt ec_paramgen_curve:P-384"

ca root "/C=CH/O=espgw test/CN=espgw test root" "$rsa2048"
ca int "/C=CH/O=espgw test/CN=espgw test intermediate" "$p256" root
ca other "/C=CH/O=someone else/CN=another root" "$p256"
ee gw1 "/C=CH/O=espgw test/CN=gw1.example" \
    "DNS:gw1.example,email:admin@gw1.example,IP:192.0.2.1" int "$rsa2048"
ee gw2 "/C=CH/O=espgw test/CN=gw2.example" "DNS:gw2.example,IP:192.0.2.2" root "$p256"
ee gw3 "/C=CH/O=espgw test/CN=gw3.example" "DNS:gw3.example" int "$p384"
ee gw4 "/C=CH/O=espgw test/CN=gw4.example" "DNS:gw4.example" root \
    "-algorithm RSA -pkeyopt rsa_keygen_bits:3072"
ee rogue "/C=CH/O=espgw test/CN=gw2.example" "DNS:gw2.example,IP:192.0.2.2" other "$p256"
# gw2's key as SEC1 ("EC PRIVATE KEY", what `openssl ecparam -genkey` and strongSwan's pki
# write) and gw4's as PKCS#1 ("RSA PRIVATE KEY"): the other formats the control reads.
ssl ec -in gw2.key -out gw2.sec1 && mv gw2.sec1 gw2.key
ssl rsa -in gw4.key -traditional -out gw4.pkcs1 && mv gw4.pkcs1 gw4.key
rm -f ./*.csr ./*.srl ext.cnf
chmod 600 ./*.key
chmod 644 ./*.crt ./*.pem
