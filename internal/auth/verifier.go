package auth

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"
	"sync"
	"time"
)

// RequestVerifier checks signed REST requests for one app, as
// VerifyRequestQuery and VerifyBodyMD5 do, from the raw query string. It is
// what the REST API runs on every request, so the common query, the few
// lower-case parameters an SDK sends, is read in one pass without building
// a url.Values, and the signature is computed with an HMAC keyed once and
// reused. Any other query (escapes, repeated or upper-case keys, many
// parameters) goes the general way: the result and the errors are the
// same either way.
//
// A RequestVerifier is safe for concurrent use.
type RequestVerifier struct {
	key, secret string
	scratch     sync.Pool // of *verifyScratch
}

// NewRequestVerifier returns the verifier of the app with this key and
// secret.
func NewRequestVerifier(key, secret string) *RequestVerifier {
	v := &RequestVerifier{key: key, secret: secret}
	v.scratch.New = func() any {
		return &verifyScratch{mac: hmac.New(sha256.New, []byte(secret)), buf: make([]byte, 0, 512)}
	}
	return v
}

// Key is the app key the verifier accepts.
func (v *RequestVerifier) Key() string { return v.key }

// Secret is the secret the verifier signs with.
func (v *RequestVerifier) Secret() string { return v.secret }

// maxFastParams is how many query parameters the one-pass reading takes;
// SDKs send five, or a few more on GET. More go the general way.
const maxFastParams = 16

type queryPair struct{ k, v string }

// verifyScratch is one request's working memory.
type verifyScratch struct {
	mac   hash.Hash // keyed with the secret: Reset keeps the key
	buf   []byte    // the string to sign, then the signatures compared
	sum   [sha256.Size]byte
	pairs [maxFastParams]queryPair
	n     int
}

// Signed is a query VerifyQuery accepted: what it tells about the body.
type Signed struct {
	bodyMD5 string
}

// VerifyBody checks a request body against the body_md5 its query signed,
// as VerifyBodyMD5 does. An empty body needs none.
func (s Signed) VerifyBody(body []byte) error {
	if len(body) == 0 {
		return nil
	}
	if s.bodyMD5 == "" || !md5Matches(s.bodyMD5, body) {
		return ErrBodyMD5
	}
	return nil
}

// md5Matches reports whether sent is the hex MD5 of body, in constant time
// and without allocating.
func md5Matches(sent string, body []byte) bool {
	if len(sent) != 2*md5.Size {
		return false
	}
	sum := md5.Sum(body)
	var want [2 * md5.Size]byte
	hex.Encode(want[:], sum[:])
	var got [2 * md5.Size]byte
	copy(got[:], sent)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// VerifyQuery checks a request's raw query as VerifyRequestQuery checks
// its parsed form (url.URL.Query, which drops malformed pairs): the auth_*
// parameters, none repeated, the key, the version, the timestamp and the
// signature over method, path and query. altPath, when not "", is another
// spelling of the path (the escaped one, as the client sent it), accepted
// when the signature over path does not match; a refusal names path.
func (v *RequestVerifier) VerifyQuery(method, path, altPath, rawQuery string, now time.Time) (Signed, error) {
	s := v.scratch.Get().(*verifyScratch)
	defer v.scratch.Put(s)
	if !s.parse(rawQuery) {
		return v.verifyValues(method, path, altPath, rawQuery, now)
	}
	if err := checkAuthValues(v.key, authValues{
		key:       s.get("auth_key"),
		timestamp: s.get("auth_timestamp"),
		version:   s.get("auth_version"),
		signature: s.get("auth_signature"),
	}, now); err != nil {
		return Signed{}, err
	}
	sig := s.get("auth_signature")
	if s.signatureMatches(method, path, sig) {
		return Signed{bodyMD5: s.get("body_md5")}, nil
	}
	want := string(s.buf[:s.signedLen(method, path)])
	if altPath != "" && s.signatureMatches(method, altPath, sig) {
		return Signed{bodyMD5: s.get("body_md5")}, nil
	}
	return Signed{}, fmt.Errorf("%w: you should have sent HmacSHA256Hex(%q, your_secret_key)", ErrBadSignature, want)
}

// verifyValues is VerifyQuery the general way, through url.Values.
func (v *RequestVerifier) verifyValues(method, path, altPath, rawQuery string, now time.Time) (Signed, error) {
	q, _ := url.ParseQuery(rawQuery) // what url.URL.Query does: malformed pairs are dropped
	err := VerifyRequestQuery(v.key, v.secret, method, path, q, now)
	if err != nil && altPath != "" && errors.Is(err, ErrBadSignature) {
		if VerifyRequestQuery(v.key, v.secret, method, altPath, q, now) == nil {
			err = nil
		}
	}
	if err != nil {
		return Signed{}, err
	}
	return Signed{bodyMD5: q.Get("body_md5")}, nil
}

// parse reads a query in one pass into s.pairs, and reports whether it is
// one it can: no escapes ('%', '+'), no ';' (which url.ParseQuery refuses
// and drops), keys that are non-empty, ASCII, lower-case and distinct, and
// at most maxFastParams of them. For such a query the pairs are exactly
// what url.ParseQuery would return, and RequestString's lower-casing and
// joining of repeats have nothing to do.
func (s *verifyScratch) parse(raw string) bool {
	s.n = 0
	// Three IndexByte scans are vectorised; ContainsAny's set is not.
	if strings.IndexByte(raw, '%') >= 0 || strings.IndexByte(raw, '+') >= 0 || strings.IndexByte(raw, ';') >= 0 {
		return false
	}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		if k == "" || s.n == len(s.pairs) {
			return false
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
				return false
			}
		}
		for i := range s.n {
			if s.pairs[i].k == k {
				return false
			}
		}
		s.pairs[s.n] = queryPair{k, val}
		s.n++
	}
	// Sorted by key, as RequestString signs them.
	p := s.pairs[:s.n]
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].k < p[j-1].k; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
	return true
}

func (s *verifyScratch) get(k string) string {
	for i := range s.n {
		if s.pairs[i].k == k {
			return s.pairs[i].v
		}
	}
	return ""
}

// signedLen writes the string the request signs, RequestString's, to
// s.buf and returns its length.
func (s *verifyScratch) signedLen(method, path string) int {
	b := append(s.buf[:0], strings.ToUpper(method)...)
	b = append(b, '\n')
	b = append(b, path...)
	b = append(b, '\n')
	first := true
	for _, p := range s.pairs[:s.n] {
		if p.k == "auth_signature" {
			continue
		}
		if !first {
			b = append(b, '&')
		}
		first = false
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	s.buf = b
	return len(b)
}

// signatureMatches reports, in constant time, whether sig is the signature
// of the request for method and path.
func (s *verifyScratch) signatureMatches(method, path, sig string) bool {
	n := s.signedLen(method, path)
	s.mac.Reset()
	s.mac.Write(s.buf[:n])
	sum := s.mac.Sum(s.sum[:0])
	b := hex.AppendEncode(s.buf[:n], sum)
	b = append(b, sig...)
	s.buf = b
	want, got := b[n:n+2*len(sum)], b[n+2*len(sum):]
	return subtle.ConstantTimeCompare(got, want) == 1
}
