# Throwaway certificates for the TLS tests and the benchmark (sourced).
# Every function returns non-zero when openssl fails; what openssl said is
# in $PKI/openssl.log, and the caller decides whether that is a bail-out,
# a skip or a missing benchmark row.
#
#   pki_init DIR SAN          DIR/ext.cnf with sections [ca] and [leaf];
#                             SAN like "DNS:api.test, IP:127.0.0.1"
#   pki_ca NAME [KEYARGS...]  self-signed CA NAME.pem / NAME.key
#                             (EC P-256 unless KEYARGS say e.g. rsa:2048)
#   pki_leaf NAME CA DAYS [SECTION]
#                             EC P-256 leaf signed by CA; a negative DAYS
#                             makes an expired one; SECTION defaults to leaf

pki_init() {
    PKI=$1
    mkdir -p "$PKI" || return 1
    cat > "$PKI/ext.cnf" <<X
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $2
X
}

pki_openssl() { openssl "$@" >>"$PKI/openssl.log" 2>&1; }

pki_ca() {
    local name=$1
    shift
    [ $# -gt 0 ] || set -- ec -pkeyopt ec_paramgen_curve:P-256
    pki_openssl req -new -newkey "$@" -nodes -keyout "$PKI/$name.key" -out "$PKI/$name.csr" \
        -subj "/CN=autoswitch test $name" &&
    pki_openssl x509 -req -in "$PKI/$name.csr" -signkey "$PKI/$name.key" -days 2 \
        -extfile "$PKI/ext.cnf" -extensions ca -out "$PKI/$name.pem"
}

pki_leaf() {
    local name=$1 ca=$2 days=$3 section=${4:-leaf}
    pki_openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "/CN=$name" &&
    pki_openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca.key" \
        -set_serial "$RANDOM$RANDOM" -days "$days" -extfile "$PKI/ext.cnf" -extensions "$section" \
        -out "$PKI/$name.pem"
}
