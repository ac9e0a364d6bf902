// Package channel holds the rules for channel names that every front end and
// the REST API share: which names are valid, what their prefixes make them
// (public, private, presence, encrypted, a signed-in user's own channel,
// cache variants), and which user ids may sign in.
package channel

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is what a channel's name prefix makes it.
type Kind uint8

const (
	Public Kind = iota
	Private
	Presence
	Encrypted // private-encrypted-*
	ServerToUser
)

// Channel describes a validated channel name.
type Channel struct {
	Name  string
	Kind  Kind
	Cache bool // cache-* and the cache variants of the other kinds
}

// ServerToUserPrefix names a signed-in user's own channel. Only the server
// may create it, and only the user it names may subscribe to it.
const ServerToUserPrefix = "#server-to-user-"

// Channel name errors.
var (
	ErrChannelEmpty   = errors.New("channel name is empty")
	ErrChannelLength  = errors.New("channel name is too long")
	ErrChannelCharset = errors.New("channel name contains invalid characters")
)

// Parse validates name (allowed characters A-Z a-z 0-9 _ - = @ , . ;
// and at most maxLen of them) and classifies it. '#' is reserved: the only
// '#' name accepted is "#server-to-user-{user id}", where the id follows the
// rule of ValidUserID instead of maxLen: every user that may sign in must be
// able to subscribe to its own channel.
func Parse(name string, maxLen int) (Channel, error) {
	if name == "" {
		return Channel{}, ErrChannelEmpty
	}
	if id, ok := strings.CutPrefix(name, ServerToUserPrefix); ok {
		switch {
		case len(id) > MaxUserIDLength:
			return Channel{}, fmt.Errorf("%w: user id of %d characters, at most %d", ErrChannelLength, len(id), MaxUserIDLength)
		case id == "", !validNameChars(id):
			return Channel{}, ErrChannelCharset
		}
		return Channel{Name: name, Kind: ServerToUser}, nil
	}
	if len(name) > maxLen {
		return Channel{}, fmt.Errorf("%w: %d characters, at most %d", ErrChannelLength, len(name), maxLen)
	}
	if !validNameChars(name) {
		return Channel{}, ErrChannelCharset
	}
	c := Channel{Name: name}
	switch {
	case strings.HasPrefix(name, "private-encrypted-"):
		c.Kind = Encrypted
		c.Cache = strings.HasPrefix(name, "private-encrypted-cache-")
	case strings.HasPrefix(name, "private-"):
		c.Kind = Private
		c.Cache = strings.HasPrefix(name, "private-cache-")
	case strings.HasPrefix(name, "presence-"):
		c.Kind = Presence
		c.Cache = strings.HasPrefix(name, "presence-cache-")
	default:
		c.Cache = strings.HasPrefix(name, "cache-")
	}
	return c, nil
}

// ParseToken parses a channel name as Centrifugo clients and the
// Centrifugo-style server API name channels: a Pusher channel name, or "$"
// followed by a plain public name. It reports whether a subscription token
// is required: for "$", private- and presence- channels.
func ParseToken(name string, maxLen int) (ch Channel, needsToken bool, err error) {
	if rest, ok := strings.CutPrefix(name, "$"); ok {
		ch, err := Parse(rest, maxLen-1)
		if err != nil {
			return Channel{}, true, err
		}
		if ch.Kind != Public || ch.Cache {
			return Channel{}, true, errors.New("a $ channel must be a plain name")
		}
		return Channel{Name: name, Kind: Public}, true, nil
	}
	ch, err = Parse(name, maxLen)
	if err != nil {
		return ch, false, err
	}
	return ch, ch.Kind != Public, nil
}

// NeedsAuth reports whether a subscription must carry a signature.
func (c Channel) NeedsAuth() bool {
	return c.Kind == Private || c.Kind == Presence || c.Kind == Encrypted
}

// AllowsClientEvents reports whether client-* events may be sent on the
// channel: private and presence only; the server cannot read ciphertext on
// encrypted channels, so it refuses to relay clients' own payloads there.
func (c Channel) AllowsClientEvents() bool {
	return c.Kind == Private || c.Kind == Presence
}

// ValidUserID reports whether id may name a signed-in user: non-empty, at
// most MaxUserIDLength characters from the channel-name alphabet, so that it
// fits into "#server-to-user-{id}" and may join presence channels as itself.
func ValidUserID(id string) bool {
	return id != "" && len(id) <= MaxUserIDLength && validNameChars(id)
}

// MaxUserIDLength bounds user ids: 128 characters is Pusher's published limit
// for presence user ids, and a signed-in connection joins presence channels
// under its sign-in id, so sign-in ids get the same bound (the server SDKs
// would allow 200). Every member id is announced to every other member, so
// the bound is also what one client can make Herald send to the others.
const MaxUserIDLength = 128

// UserIDTooLong reports whether a presence member id, any Unicode
// text after coercion to a string, is over MaxUserIDLength characters.
func UserIDTooLong(id string) bool {
	return len(id) > MaxUserIDLength && utf8.RuneCountInString(id) > MaxUserIDLength
}

func validNameChars(s string) bool {
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

// ReservedEvent reports whether an event name belongs to the Pusher
// protocol's own namespaces, "pusher:" and "pusher_internal:". Clients act
// on such events as if the server had sent them, whatever channel they
// come on: pusher-js reads a channel's pusher_internal:subscription_succeeded
// as its member list, pusher_internal:member_added as a join, pusher:error
// as a connection error. Only Herald sends them; a publication by that
// name is refused, as Pusher refuses it ("The 'pusher' namespace is
// reserved for internal usage").
func ReservedEvent(name string) bool {
	return strings.HasPrefix(name, "pusher:") || strings.HasPrefix(name, "pusher_internal:")
}

// EventNameTooLong reports whether an event name has more than max
// characters. Pusher's limit on names is in characters, and a name, unlike
// a channel name, may hold any Unicode text: one in a script other than
// Latin has two or three bytes per character.
func EventNameTooLong(name string, max int) bool {
	return len(name) > max && utf8.RuneCountInString(name) > max
}
