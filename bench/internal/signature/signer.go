package signature

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/url"
	"strconv"
	"strings"
)

// Signer signs REST requests of one app as Request does, for a load
// generator that sends many: the HMAC is keyed once, and the query is
// appended to a buffer the caller reuses, so signing allocates nothing. A
// Signer is not safe for concurrent use; give each sender its own.
type Signer struct {
	key    string // as signed
	keyURL string // as sent, escaped for a query
	mac    hash.Hash
	sum    []byte
	line   []byte // the string to sign
}

// NewSigner returns a Signer for the app with this key and secret.
func NewSigner(key, secret string) *Signer {
	return &Signer{key: key, keyURL: url.QueryEscape(key), mac: hmac.New(sha256.New, []byte(secret)),
		sum: make([]byte, 0, sha256.Size)}
}

// AppendQuery appends the query string of a signed request with no
// parameters of its own: auth_key, auth_timestamp, auth_version, body_md5
// (for a non-empty body) and auth_signature, escaped for a URL. The
// parameters are those of Request, which sorts them in the same order.
func (s *Signer) AppendQuery(dst []byte, method, path string, body []byte, unixTime int64) []byte {
	// The string to sign is METHOD\npath\nparams, with the params sorted:
	// auth_key < auth_timestamp < auth_version < body_md5. The query sent
	// is the same params (the key escaped) plus auth_signature.
	l := append(s.line[:0], strings.ToUpper(method)...)
	l = append(l, '\n')
	l = append(l, path...)
	l = append(l, '\n')
	paramsAt := len(l)
	l = append(l, "auth_key="...)
	keyAt := len(l)
	l = append(l, s.key...)
	keyEnd := len(l)
	l = append(l, "&auth_timestamp="...)
	l = strconv.AppendInt(l, unixTime, 10)
	l = append(l, "&auth_version=1.0"...)
	if len(body) > 0 {
		sum := md5.Sum(body)
		l = append(l, "&body_md5="...)
		l = hex.AppendEncode(l, sum[:])
	}
	s.line = l
	s.mac.Reset()
	s.mac.Write(l)
	s.sum = s.mac.Sum(s.sum[:0])

	if s.keyURL == s.key {
		dst = append(dst, l[paramsAt:]...)
	} else {
		dst = append(dst, l[paramsAt:keyAt]...)
		dst = append(dst, s.keyURL...)
		dst = append(dst, l[keyEnd:]...)
	}
	dst = append(dst, "&auth_signature="...)
	return hex.AppendEncode(dst, s.sum)
}
