package appauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Errors of the signing functions. A handler answers ErrInvalidSocketID and
// ErrInvalidChannel with 400, ErrNoMasterKey with 403.
var (
	ErrInvalidSocketID = errors.New("appauth: socket_id is not digits.digits")
	ErrInvalidChannel  = errors.New("appauth: invalid channel name")
	ErrInvalidUserID   = errors.New("appauth: invalid user id")
	ErrNoMasterKey     = errors.New("appauth: private-encrypted channels need an encryption master key")
)

// Limits of what Herald accepts, applied here so that a token the package
// signs is one Herald takes.
const (
	// MaxChannelNameLength is the longest channel name (the server SDKs'
	// bound, and Herald's default).
	MaxChannelNameLength = 200
	// MaxUserIDLength is the longest user id (Pusher's published limit for
	// presence user ids, which Herald also applies to signed-in users).
	MaxUserIDLength   = 128
	maxSocketIDLength = 64
)

// Signer signs Pusher channel authorizations and user authentications for
// one app, exactly as the Pusher server SDKs do: "key:hex(HMAC-SHA256(secret,
// string))". It does no I/O and is safe for concurrent use.
type Signer struct {
	key, secret string
	masterKey   []byte
}

// NewSigner returns the signer of the app with this key and secret.
// masterKey, 32 bytes or nil, is the encryption master key from which the
// shared secret of each private-encrypted channel is derived.
func NewSigner(key, secret string, masterKey []byte) (*Signer, error) {
	if key == "" || secret == "" {
		return nil, errors.New("appauth: the app key and secret must not be empty")
	}
	if strings.Contains(key, ":") {
		return nil, errors.New("appauth: the app key must not contain ':'")
	}
	if masterKey != nil && len(masterKey) != 32 {
		return nil, fmt.Errorf("appauth: the encryption master key has %d bytes, not 32", len(masterKey))
	}
	return &Signer{key: key, secret: secret, masterKey: bytes.Clone(masterKey)}, nil
}

// Key returns the app key the signer signs for.
func (s *Signer) Key() string { return s.key }

// ChannelAuth is the answer of a channel authorization endpoint, as
// pusher-js reads it.
type ChannelAuth struct {
	Auth string `json:"auth"`
	// ChannelData is the presence member, a JSON string signed byte for
	// byte; empty for other channels.
	ChannelData string `json:"channel_data,omitempty"`
	// SharedSecret is the base64 key of a private-encrypted channel.
	SharedSecret string `json:"shared_secret,omitempty"`
}

// UserAuth is the answer of a user authentication endpoint.
type UserAuth struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// Member is a presence channel member: its id and optional user_info (any
// value encoding/json can marshal; a json.RawMessage is used as it is).
type Member struct {
	UserID   string
	UserInfo any
}

// User is a signed-in user: its id, optional user_info, and the ids whose
// online status it watches.
type User struct {
	ID        string
	UserInfo  any
	Watchlist []string
}

// AuthorizeChannel signs socketID's subscription to channel. member is
// required for presence channels and ignored for others.
func (s *Signer) AuthorizeChannel(socketID, channel string, member *Member) (ChannelAuth, error) {
	if !ValidSocketID(socketID) {
		return ChannelAuth{}, ErrInvalidSocketID
	}
	if err := ValidChannel(channel); err != nil {
		return ChannelAuth{}, err
	}
	var out ChannelAuth
	toSign := socketID + ":" + channel
	if strings.HasPrefix(channel, "presence-") {
		if member == nil {
			return ChannelAuth{}, fmt.Errorf("%w: a presence channel needs a member", ErrInvalidUserID)
		}
		if !ValidUserID(member.UserID) {
			return ChannelAuth{}, fmt.Errorf("%w: %q", ErrInvalidUserID, truncate(member.UserID, 64))
		}
		data, err := marshal(struct {
			UserID   string `json:"user_id"`
			UserInfo any    `json:"user_info,omitempty"`
		}{member.UserID, member.UserInfo})
		if err != nil {
			return ChannelAuth{}, fmt.Errorf("appauth: user_info: %w", err)
		}
		out.ChannelData = data
		toSign += ":" + data
	}
	if strings.HasPrefix(channel, "private-encrypted-") {
		if s.masterKey == nil {
			return ChannelAuth{}, ErrNoMasterKey
		}
		out.SharedSecret = base64.StdEncoding.EncodeToString(SharedSecret(channel, s.masterKey))
	}
	out.Auth = s.key + ":" + sign(s.secret, toSign)
	return out, nil
}

// AuthenticateUser signs socketID's sign-in as u.
func (s *Signer) AuthenticateUser(socketID string, u User) (UserAuth, error) {
	if !ValidSocketID(socketID) {
		return UserAuth{}, ErrInvalidSocketID
	}
	if !ValidUserID(u.ID) {
		return UserAuth{}, fmt.Errorf("%w: %q", ErrInvalidUserID, truncate(u.ID, 64))
	}
	// Herald refuses a sign-in whose watchlist names an id no user could
	// sign in with; refused here, the app's bug shows where it is made.
	for i, id := range u.Watchlist {
		if !ValidUserID(id) {
			return UserAuth{}, fmt.Errorf("%w: watchlist entry %d %q", ErrInvalidUserID, i, truncate(id, 64))
		}
	}
	data, err := marshal(struct {
		ID        string   `json:"id"`
		UserInfo  any      `json:"user_info,omitempty"`
		Watchlist []string `json:"watchlist,omitempty"`
	}{u.ID, u.UserInfo, u.Watchlist})
	if err != nil {
		return UserAuth{}, fmt.Errorf("appauth: user_info: %w", err)
	}
	return UserAuth{Auth: s.key + ":" + sign(s.secret, socketID+"::user::"+data), UserData: data}, nil
}

// SharedSecret derives the key of a private-encrypted channel from the
// app's master key: SHA-256(channel || masterKey), as the server SDKs do.
func SharedSecret(channel string, masterKey []byte) []byte {
	h := sha256.New()
	h.Write([]byte(channel))
	h.Write(masterKey)
	return h.Sum(nil)
}

// ValidSocketID reports whether id has the form of a Pusher socket id,
// digits.digits.
func ValidSocketID(id string) bool {
	dot := strings.IndexByte(id, '.')
	return len(id) <= maxSocketIDLength && dot > 0 && dot < len(id)-1 &&
		allDigits(id[:dot]) && allDigits(id[dot+1:])
}

// ValidChannel checks a Pusher channel name: 1 to MaxChannelNameLength
// characters from A-Z a-z 0-9 _ - = @ , . ; ('#' names are the server's).
func ValidChannel(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidChannel)
	case len(name) > MaxChannelNameLength:
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidChannel, len(name), MaxChannelNameLength)
	case !nameChars(name):
		return fmt.Errorf("%w: only A-Z a-z 0-9 _ - = @ , . ; are allowed", ErrInvalidChannel)
	}
	return nil
}

// ValidUserID reports whether id may be a presence member or signed-in user:
// 1 to MaxUserIDLength characters from the channel-name alphabet.
func ValidUserID(id string) bool {
	return id != "" && len(id) <= MaxUserIDLength && nameChars(id)
}

func nameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '=', c == '@', c == ',', c == '.', c == ';':
		default:
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func sign(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// marshal encodes v as JSON.stringify would: without escaping <, > and &,
// so that the string signed is the one a JavaScript backend would sign.
func marshal(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
