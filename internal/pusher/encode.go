package pusher

import (
	"strconv"

	"github.com/heraldhq/herald/internal/broker"
)

// The builders below return the payloads of server messages: the JSON text
// of one message each, unframed. The connection's transport frames a
// payload when it writes it (as a WebSocket text frame, for one), so the
// same bytes serve every transport; the builders' names end in Frame only
// because each builds one message.
//
// pusher:* and pusher_internal:* data is double-encoded (a JSON string
// holding JSON) as Pusher clients expect, except pusher:error, whose data is
// an object. Every message carries a "data" key: the Java client dereferences
// it unconditionally.

// EncodeEvent is the one encoder of channel events: it returns the message
// payload, shared by every subscriber of a publication through
// hub.Publication.Payload.
func EncodeEvent(m *broker.Message) []byte {
	switch m.Kind {
	case broker.KindMemberAdded:
		return frame("pusher_internal:member_added", m.Channel, AppendString(nil, memberAddedData(m.UserID, []byte(m.Data))))
	case broker.KindMemberRemoved:
		return frame("pusher_internal:member_removed", m.Channel, AppendString(nil, memberRemovedData(m.UserID)))
	}
	b := make([]byte, 0, 48+len(m.Event)+len(m.Channel)+len(m.Data)+len(m.Data)/8)
	b = append(b, `{"event":`...)
	b = AppendString(b, m.Event)
	b = append(b, `,"channel":`...)
	b = AppendString(b, m.Channel)
	b = append(b, `,"data":`...)
	if m.DataJSON {
		b = append(b, m.Data...)
	} else {
		b = AppendString(b, m.Data)
	}
	if m.UserID != "" {
		b = append(b, `,"user_id":`...)
		b = AppendString(b, m.UserID)
	}
	return append(b, '}')
}

// frame builds the payload {"event":event[,"channel":channel],"data":<dataJSON>}.
// dataJSON must already be valid JSON.
func frame(event, channel string, dataJSON []byte) []byte {
	b := make([]byte, 0, 40+len(event)+len(channel)+len(dataJSON))
	b = append(b, `{"event":`...)
	b = AppendString(b, event)
	if channel != "" {
		b = append(b, `,"channel":`...)
		b = AppendString(b, channel)
	}
	b = append(b, `,"data":`...)
	b = append(b, dataJSON...)
	return append(b, '}')
}

// stringData JSON-encodes inner (itself JSON) as a string: the
// double-encoding of pusher:* data.
func stringData(inner []byte) []byte {
	return AppendString(nil, string(inner))
}

var emptyData = []byte(`"{}"`)

// connectionEstablishedFrame returns the payload of
// pusher:connection_established.
func connectionEstablishedFrame(socketID string, activityTimeoutSec int) []byte {
	if !digitsAndDots(socketID) {
		return encodeConnectionEstablished(socketID, activityTimeoutSec)
	}
	// Every connection gets one, so it is written in one allocation of
	// the right size, the data's double encoding spelt out: a socket id of
	// digits and dots needs no escaping at either level.
	const (
		head = `{"event":"pusher:connection_established","data":"{\"socket_id\":\"`
		mid  = `\",\"activity_timeout\":`
		tail = `}"}`
	)
	b := make([]byte, 0, len(head)+len(socketID)+len(mid)+20+len(tail))
	b = append(b, head...)
	b = append(b, socketID...)
	b = append(b, mid...)
	b = strconv.AppendInt(b, int64(activityTimeoutSec), 10)
	return append(b, tail...)
}

// digitsAndDots reports whether s is made of ASCII digits and dots only,
// as the socket ids Herald gives out are.
func digitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

// encodeConnectionEstablished is connectionEstablishedFrame for any
// socket id, through the general encoders.
func encodeConnectionEstablished(socketID string, activityTimeoutSec int) []byte {
	inner := []byte(`{"socket_id":`)
	inner = AppendString(inner, socketID)
	inner = append(inner, `,"activity_timeout":`...)
	inner = strconv.AppendInt(inner, int64(activityTimeoutSec), 10)
	inner = append(inner, '}')
	return frame("pusher:connection_established", "", stringData(inner))
}

// errorFrame returns the payload of pusher:error; code 0 is sent as null (Pusher's form for
// errors that are not close codes).
func errorFrame(code Code, message, channel string) []byte {
	d := []byte(`{"code":`)
	if code == 0 {
		d = append(d, "null"...)
	} else {
		d = strconv.AppendInt(d, int64(code), 10)
	}
	d = append(d, `,"message":`...)
	d = AppendString(d, message)
	d = append(d, '}')
	return frame("pusher:error", channel, d)
}

// Subscription error types, as pusher-js and Laravel Echo report them.
const (
	errTypeAuth    = "AuthError"
	errTypeLimit   = "LimitReached"
	errTypeChannel = "InvalidChannel"
)

// subscriptionErrorFrame returns the payload of pusher:subscription_error.
func subscriptionErrorFrame(channel, typ, message string, status int) []byte {
	d := []byte(`{"type":`)
	d = AppendString(d, typ)
	d = append(d, `,"error":`...)
	d = AppendString(d, message)
	d = append(d, `,"status":`...)
	d = strconv.AppendInt(d, int64(status), 10)
	d = append(d, '}')
	return frame("pusher:subscription_error", channel, d)
}

// subscriptionSucceededFrame returns the payload of
// pusher_internal:subscription_succeeded for a channel without members.
func subscriptionSucceededFrame(channel string) []byte {
	return frame("pusher_internal:subscription_succeeded", channel, emptyData)
}

// presenceSucceededFrame returns the payload of
// pusher_internal:subscription_succeeded for a presence channel.
func presenceSucceededFrame(channel string, members []broker.Member) []byte {
	inner := []byte(`{"presence":{"ids":[`)
	for i, m := range members {
		if i > 0 {
			inner = append(inner, ',')
		}
		inner = AppendString(inner, m.UserID)
	}
	inner = append(inner, `],"hash":{`...)
	for i, m := range members {
		if i > 0 {
			inner = append(inner, ',')
		}
		inner = AppendString(inner, m.UserID)
		inner = append(inner, ':')
		inner = appendInfo(inner, m.Info)
	}
	inner = append(inner, `},"count":`...)
	inner = strconv.AppendInt(inner, int64(len(members)), 10)
	inner = append(inner, `}}`...)
	return frame("pusher_internal:subscription_succeeded", channel, stringData(inner))
}

// memberAddedData is the data string of pusher_internal:member_added.
func memberAddedData(userID string, info []byte) string {
	b := []byte(`{"user_id":`)
	b = AppendString(b, userID)
	b = append(b, `,"user_info":`...)
	b = appendInfo(b, info)
	b = append(b, '}')
	return string(b)
}

func memberRemovedData(userID string) string {
	return string(AppendString([]byte(`{"user_id":`), userID)) + "}"
}

func appendInfo(dst, info []byte) []byte {
	if len(info) == 0 {
		return append(dst, "{}"...)
	}
	return append(dst, info...)
}

// cacheMissFrame returns the payload of pusher:cache_miss.
func cacheMissFrame(channel string) []byte {
	return frame("pusher:cache_miss", channel, emptyData)
}

// signinSuccessFrame returns the payload of pusher:signin_success.
func signinSuccessFrame(userData string) []byte {
	d := AppendString([]byte(`{"user_data":`), userData)
	d = append(d, '}')
	return frame("pusher:signin_success", "", d)
}

// watchlistFrame returns the payload of pusher_internal:watchlist_events.
func watchlistFrame(online, offline []string) []byte {
	d := []byte(`{"events":[`)
	first := true
	add := func(name string, ids []string) {
		if len(ids) == 0 {
			return
		}
		if !first {
			d = append(d, ',')
		}
		first = false
		d = append(d, `{"name":`...)
		d = AppendString(d, name)
		d = append(d, `,"user_ids":[`...)
		for i, id := range ids {
			if i > 0 {
				d = append(d, ',')
			}
			d = AppendString(d, id)
		}
		d = append(d, "]}"...)
	}
	add("online", online)
	add("offline", offline)
	d = append(d, "]}"...)
	return frame("pusher_internal:watchlist_events", "", d)
}

// The payloads of pusher:pong and pusher:ping, built once.
var (
	pongFrame = frame("pusher:pong", "", emptyData)
	pingFrame = frame("pusher:ping", "", emptyData)
)
