package auth

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// REST request errors. Each maps to HTTP 401 in the API.
var (
	ErrMissingParam     = errors.New("missing parameter")
	ErrUnknownKey       = errors.New("unknown auth_key")
	ErrVersion          = errors.New("version not supported")
	ErrTimestampExpired = errors.New("timestamp expired")
	ErrBodyMD5          = errors.New("body_md5 does not match the body")
	ErrDuplicateParam   = errors.New("duplicate parameter")
)

// TimestampGrace is how far a request's auth_timestamp may be from the
// server's clock, either way: Pusher's published replay window.
const TimestampGrace = 600 * time.Second

// RequestString is the string a REST request signs: METHOD, path and every
// query parameter except auth_signature, keys lower-cased, sorted, values not
// escaped, joined "k=v" with "&". Repeated keys are joined with ",".
func RequestString(method, path string, query url.Values) string {
	keys := make([]string, 0, len(query))
	lower := make(map[string]string, len(query))
	for k, v := range query {
		lk := strings.ToLower(k)
		if lk == "auth_signature" {
			continue
		}
		keys = append(keys, lk)
		lower[lk] = strings.Join(v, ",")
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(lower[k])
	}
	return b.String()
}

// BodyMD5 is the hex MD5 of a request body, as sent in body_md5.
func BodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// SignRequest adds auth_key, auth_timestamp, auth_version, body_md5 (for a
// non-empty body) and auth_signature to query. Tests and tools use it to
// sign requests the way every Pusher server SDK does.
func SignRequest(key, secret, method, path string, query url.Values, body []byte, now time.Time) url.Values {
	q := url.Values{}
	for k, v := range query {
		q[k] = append([]string(nil), v...)
	}
	q.Set("auth_key", key)
	q.Set("auth_timestamp", strconv.FormatInt(now.Unix(), 10))
	q.Set("auth_version", "1.0")
	if len(body) > 0 {
		q.Set("body_md5", BodyMD5(body))
	}
	q.Set("auth_signature", Sign(secret, RequestString(method, path, q)))
	return q
}

// authParams are the query parameters that authenticate a request. Each may
// appear once: were one repeated, which copy counts would be up to the
// parser, and a proxy in front of Herald might read another one.
var authParams = [...]string{"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"}

// VerifyRequest checks a signed REST request for the app whose key and
// secret are given. It accepts body_md5 on bodiless requests (the Python SDK
// sends the MD5 of the empty body on GET) but requires it to match whenever
// the body is non-empty.
//
// It is VerifyRequestQuery and VerifyBodyMD5 together, for a caller that
// holds the whole request; a server that has not read the body yet calls
// VerifyRequestQuery first, so that an unsigned request costs it no body.
func VerifyRequest(key, secret, method, path string, query url.Values, body []byte, now time.Time) error {
	if err := checkParams(key, query, now); err != nil {
		return err
	}
	if err := VerifyBodyMD5(query, body); err != nil {
		return err
	}
	return checkSignature(secret, method, path, query)
}

// VerifyRequestQuery checks everything of a signed REST request that comes
// before its body: the auth_* parameters, none repeated, the key, the
// version, the timestamp and the signature over method, path and query. The
// query includes body_md5, so once this passes, VerifyBodyMD5 ties the body
// to the signature.
func VerifyRequestQuery(key, secret, method, path string, query url.Values, now time.Time) error {
	if err := checkParams(key, query, now); err != nil {
		return err
	}
	return checkSignature(secret, method, path, query)
}

// VerifyBodyMD5 checks a request body against the body_md5 its query
// signed. An empty body needs none.
func VerifyBodyMD5(query url.Values, body []byte) error {
	if len(body) == 0 {
		return nil
	}
	if sent := query.Get("body_md5"); sent == "" || !Equal(sent, BodyMD5(body)) {
		return ErrBodyMD5
	}
	return nil
}

// checkParams checks the auth_* parameters, but not the signature.
func checkParams(key string, query url.Values, now time.Time) error {
	if err := checkRepeats(query); err != nil {
		return err
	}
	return checkAuthValues(key, authValues{
		key:       query.Get("auth_key"),
		timestamp: query.Get("auth_timestamp"),
		version:   query.Get("auth_version"),
		signature: query.Get("auth_signature"),
	}, now)
}

// authValues are the auth_* parameters of a request, each given at most once.
type authValues struct {
	key, timestamp, version, signature string
}

// checkAuthValues checks the auth_* parameters, repeats excluded, in the
// order every refusal is reported: the first one missing, then the key,
// the version and the timestamp.
func checkAuthValues(key string, v authValues, now time.Time) error {
	for i, got := range [...]string{v.key, v.timestamp, v.version, v.signature} {
		if got == "" {
			return fmt.Errorf("%w: %s", ErrMissingParam, authParams[i])
		}
	}
	if v.key != key {
		return fmt.Errorf("%w: %s", ErrUnknownKey, truncate(v.key, 64))
	}
	if v.version != "1.0" {
		return fmt.Errorf("%w: %s", ErrVersion, truncate(v.version, 16))
	}
	ts, err := strconv.ParseInt(v.timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: auth_timestamp is not a number", ErrMissingParam)
	}
	given := time.Unix(ts, 0)
	if d := now.Sub(given); d >= TimestampGrace || d <= -TimestampGrace {
		return fmt.Errorf("%w: given timestamp (%s) not within %ds of server time (%s)", ErrTimestampExpired,
			given.UTC().Format(time.RFC3339), int(TimestampGrace.Seconds()), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkRepeats refuses an auth parameter given more than once, in any mix
// of letter cases: RequestString lower-cases keys, so AUTH_KEY and auth_key
// are one parameter to the signature. Of several repeated, the refusal
// names the first in authParams' order, not the first the map's random
// order comes to: the same request always gets the same answer.
func checkRepeats(query url.Values) error {
	var seen [len(authParams)]int
	for k, v := range query {
		if len(k) < len("auth_key") || len(k) > len("auth_timestamp") {
			continue // not an auth parameter, cheaper to tell than by folding case
		}
		for i, p := range authParams {
			if strings.EqualFold(k, p) {
				seen[i] += len(v)
			}
		}
	}
	for i, n := range seen {
		if n > 1 {
			return fmt.Errorf("%w: %s is given more than once", ErrDuplicateParam, authParams[i])
		}
	}
	return checkCaseRepeats(query)
}

// checkCaseRepeats refuses two keys that differ only in letter case
// ("Info" and "info"). RequestString signs keys lower-cased, so it would
// sign one of the two values, which one up to map order, while the API
// reads the key as spelt: the same request would be accepted or refused
// at random. Repeats of one spelling are signed joined, as Pusher's are.
func checkCaseRepeats(query url.Values) error {
	var lower map[string]string // lower-cased key -> the spelling seen
	dup := ""
	for k := range query {
		lk := strings.ToLower(k)
		if lk == k && lower == nil {
			continue // the usual query: no upper case met yet
		}
		if lower == nil {
			lower = make(map[string]string, len(query))
			for k2 := range query {
				if l2 := strings.ToLower(k2); l2 == k2 {
					lower[l2] = k2
				}
			}
		}
		if other, ok := lower[lk]; ok && other != k && (dup == "" || lk < dup) {
			dup = lk // the least, so that the refusal does not depend on map order
		}
		lower[lk] = k
	}
	if dup != "" {
		return fmt.Errorf("%w: %s is given in two spellings", ErrDuplicateParam, truncate(dup, 64))
	}
	return nil
}

// checkSignature compares auth_signature with the signature of the request
// string, in constant time.
func checkSignature(secret, method, path string, query url.Values) error {
	want := RequestString(method, path, query)
	if !Equal(query.Get("auth_signature"), Sign(secret, want)) {
		return fmt.Errorf("%w: you should have sent HmacSHA256Hex(%q, your_secret_key)", ErrBadSignature, want)
	}
	return nil
}

// WebhookSignature is the X-Pusher-Signature header of a webhook body.
func WebhookSignature(secret string, body []byte) string {
	return Sign(secret, string(body))
}
