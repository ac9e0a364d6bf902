// Package signature produces the signatures a Pusher app backend produces:
// signed REST requests and channel authorization tokens. herald-bench has
// its own copy, apart from the server's, so that the load generator shares
// no code with the server it measures: were the server's signing wrong, a
// shared copy would agree with it and hide the fault.
//
// It is pure (no I/O, no clock of its own); the published Pusher test
// vectors pin it down.
package signature

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// HMAC returns lowercase hex HMAC-SHA256(secret, msg), the form of every
// Pusher signature.
func HMAC(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// ChannelToken is the auth an app backend returns for a private or presence
// subscription: "key:" + HMAC(secret, socket_id:channel[:channel_data]).
// channelData, when present, is signed byte for byte as the client sends it.
func ChannelToken(key, secret, socketID, channel, channelData string) string {
	msg := socketID + ":" + channel
	if channelData != "" {
		msg += ":" + channelData
	}
	return key + ":" + HMAC(secret, msg)
}

// RequestString is the string a REST request signs: the method, the path and
// every query parameter but auth_signature, keys lower-cased and sorted,
// "k=v" joined with "&", values not escaped, a repeated key's values joined
// with ",".
func RequestString(method, path string, query url.Values) string {
	params := make(map[string]string, len(query))
	keys := make([]string, 0, len(query))
	for k, v := range query {
		k = strings.ToLower(k)
		if k == "auth_signature" {
			continue
		}
		if _, dup := params[k]; !dup {
			keys = append(keys, k)
		}
		params[k] = strings.Join(v, ",")
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
		b.WriteString(params[k])
	}
	return b.String()
}

// BodyMD5 is the lowercase hex MD5 of a request body, sent as body_md5.
func BodyMD5(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

// Request returns query plus auth_key, auth_timestamp (unixTime),
// auth_version 1.0, body_md5 (for a non-empty body) and auth_signature, as
// every Pusher server SDK signs a REST request. path is the path the server
// routes, /apps/{id}/…, without any prefix a reverse proxy strips. query is
// not modified.
func Request(key, secret, method, path string, query url.Values, body []byte, unixTime int64) url.Values {
	q := make(url.Values, len(query)+5)
	for k, v := range query {
		q[k] = append([]string(nil), v...)
	}
	q.Set("auth_key", key)
	q.Set("auth_timestamp", strconv.FormatInt(unixTime, 10))
	q.Set("auth_version", "1.0")
	if len(body) > 0 {
		q.Set("body_md5", BodyMD5(body))
	}
	q.Set("auth_signature", HMAC(secret, RequestString(method, path, q)))
	return q
}
