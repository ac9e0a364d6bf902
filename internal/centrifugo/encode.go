package centrifugo

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/broker"
)

// The builders below return one Centrifugo reply or push each, as JSON
// without a newline: every payload is a WebSocket message of its own, and
// none contains a raw newline (the client splits messages on '\n').

// EncodePublication is the one encoder of channel messages for Centrifugo
// subscribers, shared by every subscriber of a publication through
// hub.Publication.Payload:
//   - an event e with data d is a pub push whose data is d when d is JSON
//     (compacted), else d as a JSON string, and whose tags carry
//     {"event": e} besides the message's own tags; the sender's user id, when known, is the pub's info;
//   - a member announcement is a join or leave push.
func EncodePublication(m *broker.Message) []byte {
	switch m.Kind {
	case broker.KindMemberAdded:
		return joinLeave(m.Channel, "join", m.UserID, []byte(m.Data))
	case broker.KindMemberRemoved:
		return joinLeave(m.Channel, "leave", m.UserID, nil)
	}
	b := make([]byte, 0, 64+len(m.Channel)+len(m.Event)+len(m.Data)+len(m.Data)/8)
	b = append(b, `{"push":{"channel":`...)
	b = appendString(b, m.Channel)
	b = append(b, `,"pub":{"data":`...)
	b = appendData(b, m.Data)
	if m.UserID != "" {
		b = append(b, `,"info":{"user":`...)
		b = appendString(b, m.UserID)
		b = append(b, `,"client":""}`...)
	}
	b = appendTags(b, m)
	return append(b, "}}}"...)
}

// appendTags appends the pub's tags: the message's own, in key order, and
// its event name as "event" unless a tag of that name is there already.
func appendTags(b []byte, m *broker.Message) []byte {
	_, hasEvent := m.Tags["event"]
	addEvent := m.Event != "" && !hasEvent
	if len(m.Tags) == 0 && !addEvent {
		return b
	}
	b = append(b, `,"tags":{`...)
	keys := slices.Sorted(maps.Keys(m.Tags))
	if addEvent {
		i, _ := slices.BinarySearch(keys, "event")
		keys = slices.Insert(keys, i, "event")
	}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if v, ok := m.Tags[k]; ok {
			b = appendString(b, v)
		} else {
			b = appendString(b, m.Event)
		}
	}
	return append(b, '}')
}

// appendData appends d as pub data: JSON as it is (compacted, which also
// removes newlines), anything else as a JSON string.
func appendData(b []byte, d string) []byte {
	if d != "" && utf8.ValidString(d) && json.Valid([]byte(d)) {
		var buf bytes.Buffer
		buf.Grow(len(d))
		if json.Compact(&buf, []byte(d)) == nil {
			return append(b, buf.Bytes()...)
		}
	}
	return appendString(b, d)
}

// joinLeave builds a join or leave push. Presence in Herald is by user, so
// the ClientInfo's client is the user id too.
func joinLeave(ch, kind, userID string, info []byte) []byte {
	b := []byte(`{"push":{"channel":`)
	b = appendString(b, ch)
	b = append(b, `,"`...)
	b = append(b, kind...)
	b = append(b, `":{"info":`...)
	b = appendClientInfo(b, userID, info)
	return append(b, "}}}"...)
}

// appendClientInfo appends a ClientInfo for a presence member.
func appendClientInfo(b []byte, userID string, info []byte) []byte {
	b = append(b, `{"user":`...)
	b = appendString(b, userID)
	b = append(b, `,"client":`...)
	b = appendString(b, userID)
	if len(info) > 0 && utf8.Valid(info) && json.Valid(info) {
		var buf bytes.Buffer
		if json.Compact(&buf, info) == nil {
			b = append(b, `,"conn_info":`...)
			b = append(b, buf.Bytes()...)
		}
	}
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// reply builds {"id":id,"<key>":<result>}; result must be JSON.
func reply(id uint32, key string, result []byte) []byte {
	b := []byte(`{"id":`)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	b = append(b, result...)
	return append(b, '}')
}

var emptyObject = []byte(`{}`)

// errorReply builds {"id":id,"error":{"code":c,"message":m[,"temporary":true]}}.
func errorReply(id uint32, code int) []byte {
	b := []byte(`{"id":`)
	b = strconv.AppendUint(b, uint64(id), 10)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, errorMessages[code])
	if temporary(code) {
		b = append(b, `,"temporary":true`...)
	}
	return append(b, "}}"...)
}

// expiring is the {expires, ttl} part of connect, refresh, subscribe and
// sub_refresh results; ttl is whole seconds, at least 1.
type expiring struct {
	Expires bool  `json:"expires,omitempty"`
	TTL     int64 `json:"ttl,omitempty"`
}

type connectResult struct {
	Client  string `json:"client"`
	Version string `json:"version"`
	expiring
	Ping int                        `json:"ping,omitempty"`
	Pong bool                       `json:"pong,omitempty"`
	Subs map[string]json.RawMessage `json:"subs,omitempty"`
}

type refreshResult struct {
	Client  string `json:"client"`
	Version string `json:"version"`
	expiring
}

// unsubscribePush builds an unsubscribe push.
func unsubscribePush(ch string, code int, reason string) []byte {
	b := []byte(`{"push":{"channel":`)
	b = appendString(b, ch)
	b = append(b, `,"unsubscribe":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	return append(b, "}}}"...)
}

// presenceResult builds a presence result: one entry per member (user).
func presenceResult(members []broker.Member) []byte {
	b := []byte(`{"presence":{`)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, m.UserID)
		b = append(b, ':')
		b = appendClientInfo(b, m.UserID, m.Info)
	}
	return append(b, "}}"...)
}

func presenceStatsResult(clients, users int) []byte {
	b := []byte(`{"num_clients":`)
	b = strconv.AppendInt(b, int64(clients), 10)
	b = append(b, `,"num_users":`...)
	b = strconv.AppendInt(b, int64(users), 10)
	return append(b, '}')
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only the package's own result types are marshalled
	}
	return b
}
