package transport

import (
	"net/url"
	"strings"
)

// Query is the raw query of the request that opened a connection, after
// '?' and without it. Front ends read a parameter or two of it once per
// connection, so it is searched where it lies rather than parsed into a
// url.Values map for every connection.
type Query string

// plainQueryMax bounds the queries Get searches itself: shorter ones hold
// fewer parameters than net/url's default limit, past which url.ParseQuery
// returns no values at all, and they are left to it.
const plainQueryMax = 10000

// Get returns the first value of key, as url.ParseQuery(string(q)).Get(key)
// does: pairs holding ';' or a malformed escape are skipped, '+' is a
// space.
func (q Query) Get(key string) string {
	s := string(q)
	if len(s) >= plainQueryMax {
		v, _ := url.ParseQuery(s)
		return v.Get(key)
	}
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if !keyIs(k, key) {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				continue
			}
			v = u
		}
		return v
	}
	return ""
}

// keyIs reports whether the escaped key k unescapes to key; a malformed k
// is no key.
func keyIs(k, key string) bool {
	if !strings.ContainsAny(k, "%+") {
		return k == key
	}
	u, err := url.QueryUnescape(k)
	return err == nil && u == key
}
