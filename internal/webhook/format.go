package webhook

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// Event names, as Pusher has them (apps.WebhookEventTypes).
const (
	nameOccupied          = "channel_occupied"
	nameVacated           = "channel_vacated"
	nameMemberAdded       = "member_added"
	nameMemberRemoved     = "member_removed"
	nameClientEvent       = "client_event"
	nameCacheMiss         = "cache_miss"
	nameSubscriptionCount = "subscription_count"
)

// event is one element of a request's events, in Pusher's format.
type event struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	// Event, Data and SocketID are a client event's; Data is the string
	// the client sent (or the JSON text of what it sent, if that was not a
	// string), as Pusher and its SDKs have it.
	Event             string  `json:"event,omitempty"`
	Data              *string `json:"data,omitempty"`
	SocketID          string  `json:"socket_id,omitempty"`
	UserID            string  `json:"user_id,omitempty"`
	SubscriptionCount *int    `json:"subscription_count,omitempty"`
}

// fromHub turns a hub event into a webhook event; false for one that is
// not sent.
func fromHub(e hub.Event) (event, bool) {
	ev := event{Channel: e.Channel}
	switch e.Type {
	case hub.EventClientEvent:
		ev.Name = nameClientEvent
		ev.Event = e.Name
		data := clientData(e.Data)
		ev.Data = &data
		ev.SocketID = e.SocketID
		ev.UserID = e.UserID
	case hub.EventCacheMiss:
		ev.Name = nameCacheMiss
	case hub.EventTransition:
		switch e.Transition {
		case broker.TransitionOccupied:
			ev.Name = nameOccupied
		case broker.TransitionVacated:
			ev.Name = nameVacated
		case broker.TransitionMemberAdded:
			ev.Name, ev.UserID = nameMemberAdded, e.UserID
		case broker.TransitionMemberRemoved:
			ev.Name, ev.UserID = nameMemberRemoved, e.UserID
		case broker.TransitionCount:
			// Pusher counts the subscriptions of other channels only:
			// a presence channel's members are what counts there.
			if strings.HasPrefix(e.Channel, "presence-") {
				return ev, false
			}
			ev.Name = nameSubscriptionCount
			n := e.Count
			ev.SubscriptionCount = &n
		default:
			return ev, false
		}
	default:
		return ev, false
	}
	return ev, true
}

// clientData is the data field of a client_event: the client sent JSON
// (hub events carry its text); a JSON string is passed as the string it
// holds, anything else as its JSON text.
func clientData(raw string) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal([]byte(raw), &s) == nil {
			return s
		}
	}
	return raw
}

// encodeBody is a request's body: {"time_ms":...,"events":[...]}.
func encodeBody(now time.Time, events []*event) []byte {
	b := make([]byte, 0, 64+96*len(events))
	b = append(b, `{"time_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"events":[`...)
	for i, ev := range events {
		if i > 0 {
			b = append(b, ',')
		}
		j, err := json.Marshal(ev)
		if err != nil {
			// Strings and ints only: it cannot fail.
			panic(err)
		}
		b = append(b, j...)
	}
	return append(b, "]}"...)
}
