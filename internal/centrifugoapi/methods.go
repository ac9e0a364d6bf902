package centrifugoapi

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
)

// method runs one API method on its params (a JSON object, or nil).
type method func(a *API, ctx context.Context, app *apps.App, params json.RawMessage) (any, *Error)

var methods map[string]method

func init() {
	methods = map[string]method{
		"publish":        (*API).publish,
		"broadcast":      (*API).broadcast,
		"presence":       (*API).presence,
		"presence_stats": (*API).presenceStats,
		"channels":       (*API).channels,
		"disconnect":     (*API).disconnect,
		"info":           (*API).info,
		"unsubscribe":    (*API).unsubscribe,
		// Known to Centrifugo, not available in Herald.
		"subscribe":      notAvailable,
		"refresh":        notAvailable,
		"history":        notAvailable,
		"history_remove": notAvailable,
		"rpc":            notAvailable,
		"batch":          notAvailable,
	}
}

func notAvailable(*API, context.Context, *apps.App, json.RawMessage) (any, *Error) {
	return nil, errNotAvailable
}

// params decodes a method's parameters; a body that does not fit the
// method's shape is a bad request.
func params(raw json.RawMessage, v any) *Error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errBadRequest
	}
	return nil
}

// DefaultEvent is the Pusher event name of a publication without an
// "event" tag.
const DefaultEvent = "message"

type publishParams struct {
	Channel  string            `json:"channel"`
	Channels []string          `json:"channels"`
	Data     json.RawMessage   `json:"data"`
	B64Data  string            `json:"b64data"`
	Tags     map[string]string `json:"tags"`
}

// message builds the publication of p's data to ch, or says why not.
func (p *publishParams) message(app *apps.App, name string) (broker.Message, *Error) {
	ch, e := publishChannel(app, name)
	if e != nil {
		return broker.Message{}, e
	}
	body, e := p.body(app)
	if e != nil {
		return broker.Message{}, e
	}
	return addressed(body, ch), nil
}

// addressed is the publication body to ch.
func addressed(body broker.Message, ch channel.Channel) broker.Message {
	body.Channel = ch.Name
	body.Cache = ch.Cache
	return body
}

// publishChannel is the channel a publication to name goes to, or why
// there is none.
func publishChannel(app *apps.App, name string) (channel.Channel, *Error) {
	ch, _, err := channel.ParseToken(name, app.MaxChannelNameLength)
	switch {
	case name == "":
		return ch, errBadRequest
	case err != nil:
		return ch, errUnknownChan
	case ch.Kind == channel.Encrypted:
		// Its subscribers expect data the publisher encrypted.
		return ch, errBadRequest
	}
	return ch, nil
}

// body is the publication of p's data, to any channel: built once for a
// broadcast, whose messages then share its data.
func (p *publishParams) body(app *apps.App) (broker.Message, *Error) {
	var data bytes.Buffer
	if err := json.Compact(&data, p.Data); err != nil {
		return broker.Message{}, errBadRequest
	}
	if data.Len() > app.MaxEventBytes {
		return broker.Message{}, errBadRequest
	}
	event := p.Tags["event"]
	if event == "" {
		event = DefaultEvent
	}
	if channel.ReservedEvent(event) || channel.EventNameTooLong(event, apps.DefaultMaxEventNameLength) {
		// Pusher subscribers get it as the event's name: one of the
		// protocol's own they would take for the server's message, and
		// the REST API's bound on names holds here too.
		return broker.Message{}, errBadRequest
	}
	var tags map[string]string
	if len(p.Tags) > 0 {
		tags = p.Tags
	}
	return broker.Message{
		Kind:  broker.KindEvent,
		AppID: app.ID,
		Event: event,
		Data:  data.String(),
		Tags:  tags,
	}, nil
}

// hasData reports whether the publication has JSON data: none, or a
// binary b64data Herald cannot pass to Pusher clients, is a bad request.
func (p *publishParams) hasData() bool {
	return len(p.Data) != 0 && !bytes.Equal(bytes.TrimSpace(p.Data), []byte("null"))
}

func (a *API) publish(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	var p publishParams
	if e := params(raw, &p); e != nil {
		return nil, e
	}
	if !p.hasData() {
		return nil, errBadRequest
	}
	return a.publishTo(ctx, app, &p, p.Channel)
}

func (a *API) publishTo(ctx context.Context, app *apps.App, p *publishParams, name string) (any, *Error) {
	m, e := p.message(app, name)
	if e != nil {
		return nil, e
	}
	if err := a.cfg.Hub.Publish(ctx, m, hub.SourceREST); err != nil {
		a.cfg.Log.Warn("server api publish failed", "app_id", app.ID, "channel", m.Channel, "err", err)
		return nil, errInternal
	}
	return struct{}{}, nil
}

func (a *API) broadcast(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	var p publishParams
	if e := params(raw, &p); e != nil {
		return nil, e
	}
	if len(p.Channels) == 0 || !p.hasData() {
		return nil, errBadRequest
	}
	// Each channel has its own answer; the valid ones are published in one
	// go (a few round trips to Redis in a cluster). Past a broker failure
	// a publication may or may not have gone out, and is answered as
	// failed. The data is compacted once and shared, and each message is
	// built only as it is published: a broadcast may name thousands of
	// channels, and must not hold a message for each at once.
	out := make([]reply, len(p.Channels))
	var chans []channel.Channel
	var at []int // the reply of each of chans
	for i, name := range p.Channels {
		ch, e := publishChannel(app, name)
		if e != nil {
			out[i].Error = e
			continue
		}
		chans = append(chans, ch)
		at = append(at, i)
	}
	body, e := p.body(app)
	if e != nil {
		chans = nil // every channel's answer is the data's refusal
	}
	done, err := a.cfg.Hub.PublishMany(ctx, len(chans), func(i int) broker.Message { return addressed(body, chans[i]) }, hub.SourceREST)
	if err != nil {
		a.cfg.Log.Warn("server api broadcast failed", "app_id", app.ID, "channel", chans[done].Name, "published", done, "err", err)
	}
	for k, i := range at {
		switch {
		case e != nil:
			out[i].Error = e
		case k < done:
			out[i].Result = struct{}{}
		default:
			out[i].Error = errInternal
		}
	}
	return struct {
		Responses []reply `json:"responses"`
	}{out}, nil
}

type channelParams struct {
	Channel string `json:"channel"`
}

// presenceChannel is the presence channel a presence method asks about.
func presenceChannel(app *apps.App, raw json.RawMessage) (string, *Error) {
	var p channelParams
	if e := params(raw, &p); e != nil {
		return "", e
	}
	if p.Channel == "" {
		return "", errBadRequest
	}
	ch, _, err := channel.ParseToken(p.Channel, app.MaxChannelNameLength)
	if err != nil {
		return "", errUnknownChan
	}
	if ch.Kind != channel.Presence {
		return "", errNotAvailable
	}
	return ch.Name, nil
}

type clientInfo struct {
	Client   string          `json:"client"`
	User     string          `json:"user"`
	ConnInfo json.RawMessage `json:"conn_info,omitempty"`
}

func (a *API) presence(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	name, e := presenceChannel(app, raw)
	if e != nil {
		return nil, e
	}
	members, err := a.cfg.Hub.Members(ctx, app.ID, name)
	if err != nil {
		a.cfg.Log.Warn("server api presence failed", "app_id", app.ID, "channel", name, "err", err)
		return nil, errInternal
	}
	out := make(map[string]clientInfo, len(members))
	for _, m := range members {
		out[m.UserID] = clientInfo{Client: m.UserID, User: m.UserID, ConnInfo: m.Info}
	}
	return struct {
		Presence map[string]clientInfo `json:"presence"`
	}{out}, nil
}

func (a *API) presenceStats(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	name, e := presenceChannel(app, raw)
	if e != nil {
		return nil, e
	}
	clients, err := a.cfg.Hub.ClusterSubscriptionCount(ctx, app.ID, name)
	if err != nil {
		a.cfg.Log.Warn("server api presence_stats failed", "app_id", app.ID, "channel", name, "err", err)
		return nil, errInternal
	}
	users, err := a.cfg.Hub.MemberCount(ctx, app.ID, name)
	if err != nil {
		a.cfg.Log.Warn("server api presence_stats failed", "app_id", app.ID, "channel", name, "err", err)
		return nil, errInternal
	}
	return struct {
		NumClients int `json:"num_clients"`
		NumUsers   int `json:"num_users"`
	}{clients, users}, nil
}

type numClients struct {
	NumClients int `json:"num_clients"`
}

func (a *API) channels(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	var p struct {
		Pattern string `json:"pattern"`
	}
	if e := params(raw, &p); e != nil {
		return nil, e
	}
	g, err := compileGlob(p.Pattern)
	if err != nil {
		return nil, errBadRequest
	}
	list, err := a.cfg.Hub.ClusterChannels(ctx, app.ID, g.prefix)
	if err != nil {
		a.cfg.Log.Warn("server api channels failed", "app_id", app.ID, "err", err)
		return nil, errInternal
	}
	out := make(map[string]numClients, len(list))
	for _, c := range list {
		if p.Pattern == "" || g.match(c.Name) {
			out[c.Name] = numClients{c.Subscriptions}
		}
	}
	return struct {
		Channels map[string]numClients `json:"channels"`
	}{out}, nil
}

func (a *API) disconnect(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	var p struct {
		User       string          `json:"user"`
		Client     string          `json:"client"`
		Session    string          `json:"session"`
		Whitelist  []string        `json:"whitelist"`
		Disconnect json.RawMessage `json:"disconnect"`
	}
	if e := params(raw, &p); e != nil {
		return nil, e
	}
	if p.User == "" {
		return nil, errBadRequest
	}
	// Herald ends every connection of a user, with its front end's own
	// code: one client, a whitelist or a chosen code it cannot honour.
	if p.Client != "" || p.Session != "" || len(p.Whitelist) > 0 || (len(p.Disconnect) > 0 && string(p.Disconnect) != "null") {
		return nil, errNotAvailable
	}
	if err := a.cfg.Hub.TerminateUser(ctx, app.ID, p.User); err != nil {
		a.cfg.Log.Warn("server api disconnect failed", "app_id", app.ID, "err", err)
		return nil, errInternal
	}
	return struct{}{}, nil
}

// unsubscribe ends a user's subscriptions to a channel on every node. The
// clients of front ends that can be told so (Centrifugo's, with push
// unsubscribe 2000) lose the subscription; Pusher's protocol has no such
// message, and its connections keep theirs.
func (a *API) unsubscribe(ctx context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	var p struct {
		Channel string `json:"channel"`
		User    string `json:"user"`
		Client  string `json:"client"`
		Session string `json:"session"`
	}
	if e := params(raw, &p); e != nil {
		return nil, e
	}
	if p.User == "" || p.Channel == "" {
		return nil, errBadRequest
	}
	if p.Client != "" || p.Session != "" {
		return nil, errNotAvailable
	}
	if _, _, err := channel.ParseToken(p.Channel, app.MaxChannelNameLength); err != nil {
		return nil, errUnknownChan
	}
	if err := a.cfg.Hub.UnsubscribeUser(ctx, app.ID, p.Channel, p.User); err != nil {
		a.cfg.Log.Warn("server api unsubscribe failed", "app_id", app.ID, "channel", p.Channel, "err", err)
		return nil, errInternal
	}
	return struct{}{}, nil
}

type nodeInfo struct {
	UID         string `json:"uid"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	NumClients  int    `json:"num_clients"`
	NumUsers    int    `json:"num_users"`
	NumChannels int    `json:"num_channels"`
	NumSubs     int    `json:"num_subs"`
	Uptime      int64  `json:"uptime"`
}

// info describes this node, as the app sees it: its connections, channels
// and subscriptions. Herald does not count signed-in users per node, so
// num_users is 0.
func (a *API) info(_ context.Context, app *apps.App, raw json.RawMessage) (any, *Error) {
	var p struct{}
	if e := params(raw, &p); e != nil {
		return nil, e
	}
	chans := a.cfg.Hub.Channels(app.ID, "")
	subs := 0
	for _, c := range chans {
		subs += c.Subscriptions
	}
	n := nodeInfo{
		UID:         a.cfg.NodeID,
		Name:        a.cfg.NodeName,
		Version:     a.cfg.Version,
		NumClients:  a.cfg.Hub.AppConnections(app.ID),
		NumChannels: len(chans),
		NumSubs:     subs,
		Uptime:      int64(a.cfg.Now().Sub(a.cfg.Started) / time.Second),
	}
	return struct {
		Nodes []nodeInfo `json:"nodes"`
	}{[]nodeInfo{n}}, nil
}

// glob is a compiled channels pattern: * any run of characters, ? any one
// character, \ escapes the next; everything else, [ and { included, is
// literal. prefix is the literal text before the first wildcard, which
// narrows the broker's listing.
type glob struct {
	pattern string
	prefix  string
}

func compileGlob(p string) (glob, error) {
	var prefix strings.Builder
	literal := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*', '?':
			literal = false
		case '\\':
			if i+1 == len(p) {
				return glob{}, errBadPattern
			}
			i++
			c = p[i]
		}
		if literal {
			prefix.WriteByte(c)
		}
	}
	return glob{pattern: p, prefix: prefix.String()}, nil
}

type patternError struct{}

func (patternError) Error() string { return "malformed channels pattern" }

var errBadPattern error = patternError{}

func (g glob) match(s string) bool { return globMatch(g.pattern, s) }

// globMatch matches s against pattern p, iteratively with one point to
// backtrack to: linear in len(p)*len(s) at worst.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; {
			case c == '*':
				star, mark = pi, si
				pi++
				continue
			case c == '?':
				pi++
				si++
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == s[si] {
					pi += 2
					si++
					continue
				}
			case c == s[si]:
				pi++
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
