package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
)

// MaxTriggerChannels is how many channels one trigger may name, as in every
// Pusher server SDK.
const MaxTriggerChannels = 100

// eventBody is one event as POST /events and each element of POST
// /batch_events carry it.
type eventBody struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channel  string          `json:"channel"`
	Channels []string        `json:"channels"`
	SocketID string          `json:"socket_id"`
	Info     string          `json:"info"`

	// data is Data already decoded, by decodeEventFast, when dataSet.
	data    string
	dataSet bool
	// channelsOver counts the names of channels that decodeEventFast read
	// past MaxTriggerChannels without keeping them: such an event is
	// refused, and its count is all the refusal needs.
	channelsOver int
}

// batchBody is the body of POST /batch_events.
type batchBody struct {
	Batch []eventBody `json:"batch"`
}

// event is a validated event, ready to publish.
type event struct {
	name     string
	data     string
	channels []channel.Channel
	socketID string
	info     infoSet
}

// parseEvent validates one event against the app's limits. index is the
// event's place in a batch, or -1 for a single trigger; a batch event names
// exactly one channel. The channels go into room when it has the capacity
// (a batch gives every event a slot of one array), else into an array of
// their own.
func parseEvent(app *apps.App, b *eventBody, index int, room []channel.Channel) (event, error) {
	ev := event{name: b.Name, socketID: b.SocketID}
	switch {
	case b.Name == "":
		return ev, refuse(http.StatusBadRequest, "%sname is required", eventPrefix(index))
	case channel.EventNameTooLong(b.Name, apps.DefaultMaxEventNameLength):
		return ev, refuse(http.StatusBadRequest, "%sevent name is longer than %d characters", eventPrefix(index), apps.DefaultMaxEventNameLength)
	case channel.ReservedEvent(b.Name):
		return ev, refuse(http.StatusBadRequest, "%sevent name %q: the 'pusher' namespace is reserved for internal usage", eventPrefix(index), truncate(b.Name, 64))
	case b.Data == nil && !b.dataSet:
		return ev, refuse(http.StatusBadRequest, "%sdata is required", eventPrefix(index))
	}
	data := b.data
	if !b.dataSet {
		var err error
		if data, err = dataString(b.Data); err != nil {
			return ev, refuse(http.StatusBadRequest, "%s%v", eventPrefix(index), err)
		}
	}
	if len(data) > app.MaxEventBytes {
		return ev, refuse(http.StatusRequestEntityTooLarge, "%sevent data is %d bytes, more than the limit of %d", eventPrefix(index), len(data), app.MaxEventBytes)
	}
	ev.data = data

	n := len(b.Channels) + b.channelsOver
	if index >= 0 {
		if b.Channel == "" || len(b.Channels) > 0 {
			return ev, refuse(http.StatusBadRequest, "%sa batch event needs exactly one channel, in \"channel\"", eventPrefix(index))
		}
		n = 1
	} else if b.Channel != "" {
		n++
	}
	switch {
	case n == 0:
		return ev, refuse(http.StatusBadRequest, "%schannel or channels is required", eventPrefix(index))
	case n > MaxTriggerChannels:
		return ev, refuse(http.StatusBadRequest, "%san event may be triggered on at most %d channels, not %d", eventPrefix(index), MaxTriggerChannels, n)
	}
	if cap(room) >= n {
		ev.channels = room[:0:n]
	} else {
		ev.channels = make([]channel.Channel, 0, n)
	}
	if b.Channel != "" {
		if err := ev.addChannel(app, b.Channel, index); err != nil {
			return ev, err
		}
	}
	for _, name := range b.Channels {
		if err := ev.addChannel(app, name, index); err != nil {
			return ev, err
		}
	}
	if b.SocketID != "" && !validSocketID(b.SocketID) {
		return ev, refuse(http.StatusBadRequest, "%ssocket_id %q is not a valid socket id", eventPrefix(index), truncate(b.SocketID, 64))
	}
	var err error
	if ev.info, err = parseInfo(b.Info); err != nil {
		return ev, refuse(http.StatusBadRequest, "%s%v", eventPrefix(index), err)
	}
	return ev, nil
}

// addChannel adds the channel named name to ev's, once however often it is
// named: one delivery per channel. The names are at most
// MaxTriggerChannels, few enough to look through.
func (ev *event) addChannel(app *apps.App, name string, index int) error {
	for _, ch := range ev.channels {
		if ch.Name == name {
			return nil
		}
	}
	ch, err := channel.Parse(name, app.MaxChannelNameLength)
	if err != nil {
		return refuse(http.StatusBadRequest, "%sinvalid channel name %q: %v", eventPrefix(index), truncate(name, 64), err)
	}
	ev.channels = append(ev.channels, ch)
	return nil
}

// eventPrefix names the event at index in error messages: "" for a single
// trigger, "batch[3]: " in a batch.
func eventPrefix(index int) string {
	if index < 0 {
		return ""
	}
	return "batch[" + strconv.Itoa(index) + "]: "
}

// dataString returns the event data as the string subscribers receive.
// Pusher's API takes data as a JSON string; a JSON object or other value is
// accepted too and forwarded as its compact JSON text, which is what an SDK
// would have sent after encoding it.
func dataString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return "", errDataRequired
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

var errDataRequired = refuse(http.StatusBadRequest, "data is required")

// validSocketID checks the "digits.digits" form every Pusher socket id has.
func validSocketID(s string) bool {
	dot := strings.IndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i != dot && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// publish hands validated events to the hub, one message per event and
// channel, in order, and in one broker call where the broker takes several
// (in a cluster, one round trip to Redis for the request, not one per
// channel). A failure says how many of the request's messages were
// published before it, for the backend that retries.
func (a *API) publish(r request, evs []event) error {
	n := 0
	for i := range evs {
		n += len(evs[i].channels)
	}
	var at messageCursor
	msg := func(i int) broker.Message {
		ev, ch := at.seek(evs, i)
		return broker.Message{
			Kind:    broker.KindEvent,
			AppID:   r.app.ID,
			Channel: ch.Name,
			Event:   ev.name,
			Data:    ev.data,
			Exclude: ev.socketID,
			Cache:   ch.Cache,
		}
	}
	done, err := a.cfg.Hub.PublishMany(r.Context(), n, msg, hub.SourceREST)
	if err == nil {
		return nil
	}
	// The hub refuses nothing here: any error is the broker's, and the
	// event may not have reached anyone.
	var where messageCursor
	ev, ch := where.seek(evs, done)
	what := "publishing " + strconv.Quote(ev.name) + " to " + strconv.Quote(ch.Name)
	if done > 0 {
		what += " (" + strconv.Itoa(done) + " earlier message(s) of this request were published)"
	} else {
		what += " (nothing was published)"
	}
	return unavailable(what, err)
}

// messageCursor finds a request's i-th message: the event and the channel
// it is for, counting the events' channels in order (parseEvent gives every
// event at least one). Seeking forward from the last one found takes a step
// per message, so a walk through them all is linear.
type messageCursor struct{ ev, ch, i int }

func (c *messageCursor) seek(evs []event, i int) (*event, channel.Channel) {
	if i < c.i {
		*c = messageCursor{}
	}
	for ; c.i < i; c.i++ {
		if c.ch++; c.ch == len(evs[c.ev].channels) {
			c.ev, c.ch = c.ev+1, 0
		}
	}
	return &evs[c.ev], evs[c.ev].channels[c.ch]
}

// trigger is POST /apps/{app_id}/events.
func (a *API) trigger(r request) (any, error) {
	var b eventBody
	if !decodeEventFast(r.body, &b) {
		// A body of its own: b, which encoding/json would make escape,
		// stays on the stack.
		var slow eventBody
		if err := decodeBody(r.body, &slow); err != nil {
			return nil, err
		}
		b = slow
	}
	ev, err := parseEvent(r.app, &b, -1, nil)
	if err != nil {
		return nil, err
	}
	if err := a.publish(r, []event{ev}); err != nil {
		return nil, err
	}
	if ev.info == 0 {
		return struct{}{}, nil
	}
	out := make(map[string]channelInfo, len(ev.channels))
	for _, ch := range ev.channels {
		info, err := a.info(r, ch, ev.info, false)
		if err != nil {
			a.infoFailed(r, err)
			break
		}
		out[ch.Name] = info
	}
	return map[string]any{"channels": out}, nil
}

// batchTrigger is POST /apps/{app_id}/batch_events. The whole batch is
// validated before any of it is published: a refused batch delivers nothing.
func (a *API) batchTrigger(r request) (any, error) {
	var b batchBody
	n, ok := 0, false
	if b.Batch, n, ok = decodeBatchFast(r.body, r.app.MaxBatchEvents); !ok {
		// Decoded, a batch takes many times the bytes of its body (an
		// empty event, three bytes, is an eventBody): one that is too long
		// is refused once counted.
		if n, ok = batchLen(r.body); ok && n > r.app.MaxBatchEvents {
			return nil, tooManyEvents(r.app, n)
		}
		b = batchBody{}
		if err := decodeBody(r.body, &b); err != nil {
			return nil, err
		}
		n = len(b.Batch)
	}
	switch {
	case b.Batch == nil:
		return nil, refuse(http.StatusBadRequest, "batch is required")
	case n > r.app.MaxBatchEvents:
		return nil, tooManyEvents(r.app, n)
	}
	events := make([]event, len(b.Batch))
	chans := make([]channel.Channel, len(b.Batch)) // a batch event has one
	wantInfo := false
	for i := range b.Batch {
		ev, err := parseEvent(r.app, &b.Batch[i], i, chans[i:i:i+1])
		if err != nil {
			return nil, err
		}
		events[i] = ev
		wantInfo = wantInfo || ev.info != 0
	}
	if err := a.publish(r, events); err != nil {
		return nil, err
	}
	if !wantInfo {
		return struct{}{}, nil
	}
	out := make([]channelInfo, len(events))
	for i, ev := range events {
		if ev.info == 0 {
			continue
		}
		info, err := a.info(r, ev.channels[0], ev.info, false)
		if err != nil {
			a.infoFailed(r, err)
			break
		}
		out[i] = info
	}
	return map[string]any{"batch": out}, nil
}

// infoFailed reports the info of a trigger that could not be read once
// its events were published (the broker failed in between). The answer
// stays a 200, without the counts not read: the events went out, and a
// failure status would have the backend send them again.
func (a *API) infoFailed(r request, err error) {
	if ok, suppressed := a.unavailable.Allow(); ok {
		a.cfg.Log.Warn("rest trigger published, but its info could not be read: answered without it",
			"app_id", r.app.ID, "path", r.URL.Path, "err", err, "suppressed", suppressed)
	}
}

func tooManyEvents(app *apps.App, n int) error {
	return refuse(http.StatusBadRequest, "a batch may hold at most %d events, not %d", app.MaxBatchEvents, n)
}

// decodeBody parses a JSON request body into v, refusing anything else.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return refuse(http.StatusBadRequest, "the request body must be a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return refuse(http.StatusBadRequest, "the request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}
