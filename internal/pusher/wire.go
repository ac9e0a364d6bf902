// Package pusher is Herald's Pusher Channels protocol 7 front end: the wire
// format (pure and fuzzed), channel kinds and the per-connection state
// machine that turns client frames into hub operations.
package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Message is one client frame: {"event", "channel"?, "data"?}. Data is kept
// raw because its shape depends on the event, and because client events
// forward it verbatim.
type Message struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// Frame errors.
var (
	ErrNotJSON   = errors.New("frame is not a JSON object")
	ErrNoEvent   = errors.New("frame has no event name")
	ErrBadData   = errors.New("event data has the wrong shape")
	ErrNoChannel = errors.New("subscription has no channel")
)

// ParseMessage decodes a client frame.
func ParseMessage(frame []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(frame, &m); err != nil {
		return Message{}, ErrNotJSON
	}
	if m.Event == "" {
		return Message{}, ErrNoEvent
	}
	return m, nil
}

// SubscribeData is the data of pusher:subscribe and pusher:unsubscribe.
type SubscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
}

// SigninData is the data of pusher:signin.
type SigninData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// DecodeData decodes event data into v. Clients send it as an object, but a
// few send the object JSON-encoded into a string; both are accepted.
func DecodeData(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ErrBadData
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return ErrBadData
		}
		raw = []byte(s)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadData, err)
	}
	return nil
}

// ChannelData is the presence member a backend signed into channel_data, or
// the user of a sign-in.
type ChannelData struct {
	UserID   string
	UserInfo json.RawMessage // raw JSON, nil when absent
}

// ParseChannelData decodes presence channel_data. user_id may be a string or
// a number (some backends sign numbers); it is kept as the string form.
func ParseChannelData(s string) (ChannelData, error) {
	raw, err := exactFields(s)
	if err != nil {
		return ChannelData{}, fmt.Errorf("%w: channel_data is not a JSON object", ErrBadData)
	}
	id, err := idString(raw["user_id"])
	if err != nil {
		return ChannelData{}, fmt.Errorf("%w: channel_data.user_id %v", ErrBadData, err)
	}
	cd := ChannelData{UserID: id}
	if info := raw["user_info"]; len(info) > 0 && string(info) != "null" {
		cd.UserInfo = info
	}
	return cd, nil
}

// exactFields decodes the JSON object s into its members, matching names
// exactly and keeping the last of a repeated one, as JSON.parse does in
// the client. Decoding into a struct would also take "USER_ID" or
// "User_Id" for user_id, so a backend that signed {"user_id":"a",
// "USER_ID":"b"} would have the client see a and the other members b.
func exactFields(s string) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, err
	}
	if raw == nil { // the JSON null
		return nil, ErrBadData
	}
	return raw, nil
}

// UserData is the decoded user_data of pusher:signin.
type UserData struct {
	ID        string
	UserInfo  json.RawMessage
	Watchlist []string
}

// ParseUserData decodes sign-in user_data, whose id must be a non-empty
// string.
func ParseUserData(s string) (UserData, error) {
	raw, err := exactFields(s)
	if err != nil {
		return UserData{}, fmt.Errorf("%w: user_data is not a JSON object", ErrBadData)
	}
	var id string
	if err := json.Unmarshal(raw["id"], &id); err != nil || id == "" {
		return UserData{}, fmt.Errorf("%w: user_data.id must be a non-empty string", ErrBadData)
	}
	ud := UserData{ID: id}
	if w := raw["watchlist"]; len(w) > 0 && string(w) != "null" {
		// Entry by entry: into a []string a null entry would pass as "".
		var entries []json.RawMessage
		err := json.Unmarshal(w, &entries)
		if err == nil {
			ud.Watchlist = make([]string, len(entries))
			for i, e := range entries {
				if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &ud.Watchlist[i]) != nil {
					err = ErrBadData
					break
				}
			}
		}
		if err != nil {
			return UserData{}, fmt.Errorf("%w: user_data.watchlist must be a list of user id strings", ErrBadData)
		}
	}
	if info := raw["user_info"]; len(info) > 0 && string(info) != "null" {
		ud.UserInfo = info
	}
	return ud, nil
}

func idString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", errors.New("is missing")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return "", errors.New("must be a non-empty string or a number")
		}
		return s, nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", errors.New("is not a number")
		}
		return jsNumberString(n.String())
	}
	return "", errors.New("must be a string or a number")
}

// jsNumberString returns a JSON number literal as JavaScript's String()
// spells the number JSON.parse makes of it: 1.0 is "1", 1e2 "100", -0 "0",
// 12345678901234567890 "12345678901234567000". pusher-js finds its own
// member (members.me) by the user_id of the channel_data it parsed, a
// number, which becomes that string as a key of the presence hash; a
// member announced as written ("1e2") would never be the client's own,
// and the same user signed as 1 and 1.0 would be two members. A number
// beyond a float64's range (JavaScript's Infinity) is refused.
func jsNumberString(lit string) (string, error) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return "", errors.New("is a number out of range")
	}
	if f == 0 {
		return "0", nil // -0 too
	}
	// The shortest digits that round-trip, as ECMAScript's Number::toString
	// picks them, and the position n of the decimal point after them.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	var sign string
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	k, n := len(digits), x+1
	switch {
	case k <= n && n <= 21:
		return sign + digits + strings.Repeat("0", n-k), nil
	case 0 < n && n <= 21:
		return sign + digits[:n] + "." + digits[n:], nil
	case -6 < n && n <= 0:
		return sign + "0." + strings.Repeat("0", -n) + digits, nil
	}
	out := sign + digits[:1]
	if k > 1 {
		out += "." + digits[1:]
	}
	if n-1 >= 0 {
		return out + "e+" + strconv.Itoa(n-1), nil
	}
	return out + "e" + strconv.Itoa(n-1), nil
}

// AppendString appends s as a JSON string literal. It is the one string
// encoder of the wire format, so escaping rules live in one place: control
// characters, quotes and backslashes are escaped and invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
