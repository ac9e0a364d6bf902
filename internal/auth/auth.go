// Package auth holds every signature Herald checks or produces: channel
// authorization and user sign-in tokens on sockets, signed REST requests and
// webhook bodies. It is pure: no I/O, no clock of its own, no logging, so the
// published Pusher test vectors can pin it down exactly.
//
// All signatures are lowercase hex HMAC-SHA256 keyed by the app secret, and
// every comparison of a received signature runs in constant time.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Errors returned by the token verifiers. Callers map them to protocol errors
// with errors.Is; the wrapped message says what was expected without ever
// repeating the secret.
var (
	ErrMalformedToken = errors.New("auth must have the format key:signature")
	ErrWrongKey       = errors.New("invalid key in auth data")
	ErrBadSignature   = errors.New("invalid signature")
)

// Sign returns hex(HMAC-SHA256(secret, msg)).
func Sign(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// ChannelString is the string an app's backend signs to let socketID join
// channel. channelData, when present (presence channels), is appended
// byte-for-byte as the client sent it: re-serialising it would break the
// signature.
func ChannelString(socketID, channel, channelData string) string {
	if channelData == "" {
		return socketID + ":" + channel
	}
	return socketID + ":" + channel + ":" + channelData
}

// UserString is the string an app's backend signs for pusher:signin.
func UserString(socketID, userData string) string {
	return socketID + "::user::" + userData
}

// Token formats an auth token the way Pusher server SDKs do: "key:signature".
func Token(key, secret, msg string) string {
	return key + ":" + Sign(secret, msg)
}

// VerifyToken checks that token is "key:hex(HMAC(secret, msg))" for this
// app's key. The signature comparison runs in constant time.
func VerifyToken(key, secret, token, msg string) error {
	gotKey, sig, ok := strings.Cut(token, ":")
	if !ok || gotKey == "" || sig == "" {
		return ErrMalformedToken
	}
	if gotKey != key {
		return fmt.Errorf("%w: '%s'", ErrWrongKey, truncate(gotKey, 64))
	}
	if !Equal(sig, Sign(secret, msg)) {
		return fmt.Errorf("%w: expected HMAC SHA256 hex digest of %s", ErrBadSignature, msg)
	}
	return nil
}

// Equal compares two signatures in constant time.
func Equal(a, b string) bool {
	return hmac.Equal([]byte(a), []byte(b))
}

// SharedSecret derives the per-channel key of a private-encrypted channel
// from the app's master key, as the server SDKs do. Herald itself never holds
// a master key; the function exists for tests and tools.
func SharedSecret(channel string, masterKey []byte) []byte {
	h := sha256.New()
	h.Write([]byte(channel))
	h.Write(masterKey)
	return h.Sum(nil)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
