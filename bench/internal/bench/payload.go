package bench

import (
	"bytes"
	"strconv"
)

// EventName is the name of every event herald-bench publishes.
const EventName = "herald-bench"

// markKey is the data key whose value "<stream>.<seq>.<unix-nanos>" tells a
// receiver which event it got and when it was published.
const markKey = "hb"

// Mark identifies one benchmark event: its stream (a publisher, or a channel
// batch), its sequence number within the stream, and the publisher's clock.
type Mark struct {
	Stream uint32
	Seq    uint32
	TS     int64 // unix nanoseconds at publish
}

// AppendData appends the data string of a benchmark event,
// {"hb":"<stream>.<seq>.<ts>","pad":"xxx…"}, padded with x to size bytes
// when size is larger than the bare form. The data is JSON, as real
// applications send, but needs no escaping other than its quotes.
func AppendData(dst []byte, m Mark, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"`+markKey+`":"`...)
	dst = strconv.AppendUint(dst, uint64(m.Stream), 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(m.Seq), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, m.TS, 10)
	dst = append(dst, '"')
	const padOpen, padClose = `,"pad":"`, `"}`
	if n := size - (len(dst) - start) - len(padOpen) - len(padClose); n > 0 {
		dst = append(dst, padOpen...)
		for range n {
			dst = append(dst, 'x')
		}
		dst = append(dst, padClose...)
		return dst
	}
	return append(dst, '}')
}

// markEscaped is how AppendData's data starts once a server has encoded it
// as a JSON string, as every Pusher server does: the fast path of ParseMark.
// Its first byte, rare in a frame, keeps the search short.
var markEscaped = []byte(`{\"` + markKey + `\":\"`)

// ParseMark finds the mark of a benchmark event in a whole Pusher frame,
// whether the server sent data as a JSON string (escaped quotes, the Pusher
// way) or as an object. It scans, it does not decode.
func ParseMark(msg []byte) (Mark, bool) {
	var v []byte
	if i := bytes.Index(msg, markEscaped); i >= 0 {
		v = msg[i+len(markEscaped):]
	} else if v = valueOf(msg, markKey); v == nil {
		return Mark{}, false
	}
	a, rest, ok := cutUint(v)
	if !ok || len(rest) == 0 || rest[0] != '.' {
		return Mark{}, false
	}
	b, rest, ok := cutUint(rest[1:])
	if !ok || len(rest) == 0 || rest[0] != '.' {
		return Mark{}, false
	}
	ts, rest, ok := cutUint(rest[1:])
	if !ok || len(rest) > 0 && rest[0] != '\\' && rest[0] != '"' || a > 1<<32-1 || b > 1<<32-1 || ts > 1<<63-1 {
		return Mark{}, false
	}
	return Mark{Stream: uint32(a), Seq: uint32(b), TS: int64(ts)}, true
}

func cutUint(b []byte) (v uint64, rest []byte, ok bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 19 {
		v = v*10 + uint64(b[i]-'0')
		i++
	}
	return v, b[i:], i > 0
}

// eventPrefix starts a message whose first key is "event", as Herald and
// most servers write them: the fast path of eventOf.
var eventPrefix = []byte(`{"event":"`)

// eventOf returns the event name of a Pusher message.
func eventOf(msg []byte) []byte {
	if bytes.HasPrefix(msg, eventPrefix) {
		rest := msg[len(eventPrefix):]
		if i := bytes.IndexByte(rest, '"'); i >= 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			return rest[:i]
		}
	}
	return valueOf(msg, "event")
}

// findKey returns the index just past the quoted key in msg, matching both
// "key" and \"key\" (a key inside a JSON-string data field), or -1.
func findKey(msg []byte, key string) int {
	off := 0
	for {
		i := bytes.Index(msg[off:], []byte(key))
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(key)
		if i > 0 && msg[i-1] == '"' && end < len(msg) {
			if msg[end] == '"' {
				return end + 1
			}
			if msg[end] == '\\' && end+1 < len(msg) && msg[end+1] == '"' {
				return end + 2
			}
		}
		off = i + 1
	}
}

// valueOf returns the scalar value of key in msg: the bytes after the key,
// its colon and any quotes (escaped or not), up to the next quote, backslash,
// comma or closing brace. It suits the simple values herald-bench looks at
// (event and channel names, ids, numbers), not arbitrary strings.
func valueOf(msg []byte, key string) []byte {
	i := findKey(msg, key)
	if i < 0 {
		return nil
	}
	for i < len(msg) && (msg[i] == ':' || msg[i] == ' ' || msg[i] == '"' || msg[i] == '\\') {
		i++
	}
	j := i
	for j < len(msg) {
		switch msg[j] {
		case '"', '\\', ',', '}', ']':
			return msg[i:j]
		}
		j++
	}
	return msg[i:j]
}

// Pusher event names herald-bench reacts to.
const (
	evConnectionEstablished = "pusher:connection_established"
	evError                 = "pusher:error"
	evPing                  = "pusher:ping"
	evSubscriptionSucceeded = "pusher_internal:subscription_succeeded"
	evSubscriptionError     = "pusher:subscription_error"
	evMemberAdded           = "pusher_internal:member_added"
	evMemberRemoved         = "pusher_internal:member_removed"
)

// pongMessage answers a pusher:ping.
var pongMessage = []byte(`{"event":"pusher:pong","data":{}}`)

// appendSubscribe appends a pusher:subscribe message. auth and channelData
// are left out when empty; channelData is sent as a JSON string.
func appendSubscribe(dst []byte, channel, auth, channelData string) []byte {
	dst = append(dst, `{"event":"pusher:subscribe","data":{"channel":`...)
	dst = appendJSONString(dst, channel)
	if auth != "" {
		dst = append(dst, `,"auth":`...)
		dst = appendJSONString(dst, auth)
	}
	if channelData != "" {
		dst = append(dst, `,"channel_data":`...)
		dst = appendJSONString(dst, channelData)
	}
	return append(dst, "}}"...)
}

// appendUnsubscribe appends a pusher:unsubscribe message.
func appendUnsubscribe(dst []byte, channel string) []byte {
	dst = append(dst, `{"event":"pusher:unsubscribe","data":{"channel":`...)
	dst = appendJSONString(dst, channel)
	return append(dst, "}}"...)
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString[S ~string | ~[]byte](dst []byte, s S) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
