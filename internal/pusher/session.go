package pusher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/wsconn"
)

// Transport is what a session needs of its connection; *wsconn.Conn
// provides it.
type Transport interface {
	Send(frame []byte) error
	Close(code int, reason string)
	Abort(code int, reason string)
	LastRead() time.Time
}

// Session is the protocol state of one connection. It is driven by events:
// a message arrived (HandleMessage), a timer fired (onTimer), the connection
// ended (HandleClose); it owns no goroutine.
//
// Locking: mu guards the fields below it. Deliver and the hub.User callbacks
// are called by other goroutines while the hub holds its own locks, so they
// never take mu; they only queue bytes on the transport, which has its own
// lock.
type Session struct {
	fe       *FrontEnd
	app      *apps.App
	conn     Transport
	socketID string

	mu        sync.Mutex
	closed    bool
	subs      subscriptions
	user      *UserData // set by a successful pusher:signin; no Watchlist
	watching  []string  // the honoured part of the watchlist
	authed    bool      // signed in, or joined a private or presence channel
	timer     *time.Timer
	pingSent  time.Time
	rate      tokenBucket
	signinDue *time.Timer
}

// logError logs with the session's identity. Attributes are built per call
// rather than kept in a per-session logger: idle connections must stay small.
func (s *Session) logError(msg, channel string, err error) {
	s.fe.log.Error(msg, "app_id", s.app.ID, "socket_id", s.socketID, "channel", channel, "err", err)
}

var (
	_ hub.Subscriber = (*Session)(nil)
	_ hub.User       = (*Session)(nil)
	_ wsconn.Handler = (*Session)(nil)
)

func newSession(fe *FrontEnd, app *apps.App, conn Transport, socketID string) *Session {
	s := &Session{
		fe:       fe,
		app:      app,
		conn:     conn,
		socketID: socketID,
		rate:     newTokenBucket(app.ClientEventRate, time.Now()),
	}
	return s
}

// start sends connection_established and arms the timers.
func (s *Session) start() {
	s.send(connectionEstablishedFrame(s.socketID, int(s.app.ActivityTimeout/time.Second)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = time.AfterFunc(s.app.ActivityTimeout, s.onTimer)
	if s.app.RequireSignin {
		s.signinDue = time.AfterFunc(s.app.SigninTimeout, s.onSigninDue)
	}
}

// SocketID implements hub.Subscriber.
func (s *Session) SocketID() string { return s.socketID }

// Deliver implements hub.Subscriber: the publication's frame is encoded once
// and shared by every subscriber.
func (s *Session) Deliver(p *hub.Publication) {
	s.send(p.Payload(hub.EncodingPusher, EncodeEvent))
}

// send queues a frame. A client whose queue is full is cut off: it cannot
// keep up, and waiting for it would hold everyone else back.
func (s *Session) send(frame []byte) {
	if err := s.conn.Send(frame); errors.Is(err, wsconn.ErrQueueFull) {
		s.fe.metrics.slowClients.Add(1)
		s.conn.Abort(int(CodeOverCapacity), MsgSlowClient)
	}
}

func (s *Session) sendError(code Code, msg, channel string) {
	s.send(errorFrame(code, msg, channel))
}

// Terminate implements hub.User.
func (s *Session) Terminate() {
	s.send(errorFrame(CodeUnauthorized, MsgTerminated, ""))
	s.conn.Close(int(CodeUnauthorized), MsgTerminated)
}

// WatchlistChange implements hub.User.
func (s *Session) WatchlistChange(userID string, online bool) {
	if online {
		s.send(watchlistFrame([]string{userID}, nil))
	} else {
		s.send(watchlistFrame(nil, []string{userID}))
	}
}

// HandleMessage implements wsconn.Handler.
func (s *Session) HandleMessage(data []byte) {
	m, err := ParseMessage(data)
	if err != nil {
		s.sendError(0, "Invalid message: "+err.Error(), "")
		return
	}
	// A binary frame can carry any bytes. Decoded strings have invalid
	// UTF-8 replaced, but raw data (a client event's payload) would be
	// relayed as it came, inside text frames that the receivers' WebSocket
	// libraries must reject (RFC 6455 §8.1) by dropping their connections.
	// Nothing is built from such a message.
	if !utf8.Valid(data) {
		if strings.HasPrefix(m.Event, "client-") {
			s.sendError(CodeClientEventRefused, "Client event rejected: message is not valid UTF-8", m.Channel)
		} else {
			s.sendError(0, "Invalid message: not valid UTF-8", "")
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	switch m.Event {
	case "pusher:ping":
		// Every ping is answered, even one sent before the last pong left:
		// a client that pings without reading fills its send queue and is
		// cut off as slow (see send), while skipping pongs would keep such
		// a client connected for nothing.
		s.send(pongFrame)
	case "pusher:pong":
		// Liveness is tracked by the transport's LastRead.
	case "pusher:subscribe":
		s.handleSubscribe(m)
	case "pusher:unsubscribe":
		s.handleUnsubscribe(m)
	case "pusher:signin":
		s.handleSignin(m)
	default:
		if strings.HasPrefix(m.Event, "client-") {
			s.handleClientEvent(m)
			return
		}
		s.sendError(0, "Unsupported event: "+truncate(m.Event, 64), "")
	}
}

// HandleClose implements wsconn.Handler: it undoes everything the session
// registered, so no other connection sees a ghost.
func (s *Session) HandleClose(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.signinDue != nil {
		s.signinDue.Stop()
	}
	for _, sub := range s.subs.all() {
		s.leave(sub)
	}
	s.subs = subscriptions{}
	if s.user != nil {
		s.fe.hub.Unwatch(s.app.ID, s, s.watching)
		s.fe.hub.SignOut(s.app.ID, s.user.ID, s)
	}
	s.fe.removeSession(s)
}

func (s *Session) handleSubscribe(m Message) {
	var d SubscribeData
	if err := DecodeData(m.Data, &d); err != nil || d.Channel == "" {
		s.sendError(0, "Invalid pusher:subscribe: "+ErrNoChannel.Error(), "")
		return
	}
	ch, err := channel.Parse(d.Channel, s.app.MaxChannelNameLength)
	if err != nil {
		s.refuse(d.Channel, errTypeChannel, "Invalid channel name: "+err.Error(), 400, 0)
		return
	}
	if _, ok := s.subs.get(ch.Name); ok {
		// pusher-js may re-subscribe after a quick unsubscribe/subscribe;
		// answering success again keeps its state machine consistent.
		s.resendSucceeded(ch)
		return
	}
	if ch.Kind != channel.ServerToUser && s.subscriptionCount() >= s.app.MaxSubscriptionsPerConnection {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("Subscription limit reached: at most %d channels per connection", s.app.MaxSubscriptionsPerConnection), 403, 0)
		return
	}
	switch ch.Kind {
	case channel.ServerToUser:
		if s.user == nil || ch.Name != channel.ServerToUserPrefix+s.user.ID {
			s.refuse(ch.Name, errTypeAuth, "Only the signed-in user may subscribe to its own server-to-user channel", 403, CodeUnauthorized)
			return
		}
		// Sign-in already subscribed the connection; this is pusher-js
		// asking for the confirmation.
		s.send(subscriptionSucceededFrame(ch.Name))
		return
	case channel.Private, channel.Encrypted:
		if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.ChannelString(s.socketID, ch.Name, d.ChannelData)); err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
	case channel.Presence:
		s.subscribePresence(ch, d)
		return
	}
	s.join(ch, subscription{ch: ch})
}

// subscriptionCount is the number of subscriptions counted against the
// app's MaxSubscriptionsPerConnection. The signed-in user's own
// #server-to-user- channel is left out: sign-in adds it on the client's
// behalf, at most one per connection, so a connection at its limit can still
// sign in and a signed-in one keeps its whole allowance.
func (s *Session) subscriptionCount() int {
	n := len(s.subs.all())
	if s.user != nil {
		n--
	}
	return n
}

// join registers a non-presence subscription and confirms it.
func (s *Session) join(ch channel.Channel, sub subscription) {
	s.subs.add(sub)
	if ch.NeedsAuth() {
		s.markAuthed()
	}
	s.fe.hub.Subscribe(s.app.ID, ch.Name, s)
	s.send(subscriptionSucceededFrame(ch.Name))
	s.sendCached(ch)
}

func (s *Session) subscribePresence(ch channel.Channel, d SubscribeData) {
	var member ChannelData
	switch {
	case d.ChannelData != "":
		if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.ChannelString(s.socketID, ch.Name, d.ChannelData)); err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
		cd, err := ParseChannelData(d.ChannelData)
		if err != nil {
			s.refuse(ch.Name, errTypeAuth, "Invalid channel_data: "+err.Error(), 400, 0)
			return
		}
		member = cd
	case s.user != nil:
		// A signed-in connection may join with a token over the bare
		// channel string; it joins as its signed-in user.
		if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.ChannelString(s.socketID, ch.Name, "")); err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
		member = ChannelData{UserID: s.user.ID, UserInfo: s.user.UserInfo}
	default:
		s.refuse(ch.Name, errTypeAuth, "Presence subscription needs channel_data", 400, CodeUnauthorized)
		return
	}
	// The limits apply to the id as announced: a numeric user_id counts as
	// its string form.
	if channel.UserIDTooLong(member.UserID) {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("user_id is %d characters, at most %d allowed", utf8.RuneCountInString(member.UserID), channel.MaxUserIDLength), 400, 0)
		return
	}
	if len(member.UserInfo) > s.app.MaxPresenceUserInfoBytes {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("user_info is %d bytes, at most %d allowed", len(member.UserInfo), s.app.MaxPresenceUserInfoBytes), 400, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	first, err := s.fe.hub.Broker().Join(ctx, s.app.ID, ch.Name, s.socketID,
		broker.Member{UserID: member.UserID, Info: member.UserInfo}, s.app.MaxPresenceMembers)
	if errors.Is(err, broker.ErrMemberLimit) {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("Presence channel is full: at most %d members", s.app.MaxPresenceMembers), 403, 0)
		return
	}
	if err != nil {
		s.logError("presence join failed", ch.Name, err)
		s.refuse(ch.Name, errTypeLimit, "Presence is unavailable, try again", 503, 0)
		return
	}
	s.subs.add(subscription{ch: ch, userID: member.UserID})
	s.markAuthed()
	// Subscribe before reading the member list, so a member who joins in
	// between is either in the list or announced afterwards.
	s.fe.hub.Subscribe(s.app.ID, ch.Name, s)
	members, err := s.fe.hub.Broker().Members(ctx, s.app.ID, ch.Name)
	if err != nil {
		s.logError("presence members failed", ch.Name, err)
	}
	s.send(presenceSucceededFrame(ch.Name, members))
	s.sendCached(ch)
	if first {
		s.publish(ctx, broker.Message{
			AppID: s.app.ID, Channel: ch.Name, Event: "pusher_internal:member_added",
			Data: memberAddedData(member.UserID, member.UserInfo), Exclude: s.socketID,
		})
	}
}

func (s *Session) resendSucceeded(ch channel.Channel) {
	if ch.Kind != channel.Presence {
		s.send(subscriptionSucceededFrame(ch.Name))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	members, _ := s.fe.hub.Broker().Members(ctx, s.app.ID, ch.Name)
	s.send(presenceSucceededFrame(ch.Name, members))
}

// sendCached gives a new subscriber of a cache channel the channel's last
// event, or pusher:cache_miss.
func (s *Session) sendCached(ch channel.Channel) {
	if !ch.Cache {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	m, ok, err := s.fe.hub.Broker().LastEvent(ctx, s.app.ID, ch.Name)
	if err != nil {
		s.logError("cache lookup failed", ch.Name, err)
	}
	if !ok {
		s.send(cacheMissFrame(ch.Name))
		return
	}
	s.send(EncodeEvent(&m))
}

func (s *Session) handleUnsubscribe(m Message) {
	var d SubscribeData
	if err := DecodeData(m.Data, &d); err != nil || d.Channel == "" {
		s.sendError(0, "Invalid pusher:unsubscribe: "+ErrNoChannel.Error(), "")
		return
	}
	if sub, ok := s.subs.remove(d.Channel); ok {
		s.leave(sub)
	}
	// Unsubscribing from a channel the connection is not in is a no-op, as
	// pusher-js expects.
}

// leave undoes a subscription; for presence it announces the member's
// departure when this was the user's last connection.
func (s *Session) leave(sub subscription) {
	name := sub.ch.Name
	s.fe.hub.Unsubscribe(s.app.ID, name, s)
	if sub.ch.Kind != channel.Presence {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	last, err := s.fe.hub.Broker().Leave(ctx, s.app.ID, name, s.socketID, sub.userID)
	if err != nil {
		s.logError("presence leave failed", name, err)
		return
	}
	if last {
		s.publish(ctx, broker.Message{
			AppID: s.app.ID, Channel: name, Event: "pusher_internal:member_removed",
			Data: memberRemovedData(sub.userID),
		})
	}
}

func (s *Session) handleClientEvent(m Message) {
	sub, ok := s.subs.get(m.Channel)
	switch {
	case !s.app.ClientEvents:
		s.sendError(CodeClientEventRefused, "To send client events, you must enable this feature in the app settings", m.Channel)
	case m.Channel == "":
		s.sendError(CodeClientEventRefused, "Client event has no channel", "")
	case !ok:
		s.sendError(CodeClientEventRefused, "Client event rejected: not subscribed to channel "+truncate(m.Channel, 64), m.Channel)
	case !sub.ch.AllowsClientEvents():
		s.sendError(CodeClientEventRefused, "Client event rejected: only supported on private and presence channels", m.Channel)
	case len(m.Event) > apps.DefaultMaxEventNameLength:
		s.sendError(CodeClientEventRefused, "Client event rejected: event name too long", m.Channel)
	case len(m.Data) > s.app.MaxEventBytes:
		s.sendError(CodeClientEventRefused, fmt.Sprintf("Client event rejected: data over %d bytes", s.app.MaxEventBytes), m.Channel)
	case !s.rate.take(time.Now()):
		s.sendError(CodeClientEventRefused, fmt.Sprintf("Client event rejected due to rate limit (%d per second)", s.app.ClientEventRate), m.Channel)
	default:
		data := m.Data
		if len(data) == 0 {
			data = []byte("null")
		}
		ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
		defer cancel()
		msg := broker.Message{
			AppID: s.app.ID, Channel: m.Channel, Event: m.Event,
			Data: string(data), DataJSON: true, Exclude: s.socketID,
		}
		if sub.ch.Kind == channel.Presence {
			msg.UserID = sub.userID
		}
		s.publish(ctx, msg)
	}
}

func (s *Session) handleSignin(m Message) {
	var d SigninData
	if err := DecodeData(m.Data, &d); err != nil {
		s.sendError(CodeUnauthorized, "Invalid pusher:signin data", "")
		return
	}
	if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.UserString(s.socketID, d.UserData)); err != nil {
		s.sendError(CodeUnauthorized, "Sign-in refused: "+authMessage(err), "")
		return
	}
	ud, err := ParseUserData(d.UserData)
	if err != nil {
		s.sendError(CodeUnauthorized, "Sign-in refused: "+err.Error(), "")
		return
	}
	if !channel.ValidUserID(ud.ID) {
		s.sendError(CodeUnauthorized, fmt.Sprintf("Sign-in refused: user id may only contain A-Z a-z 0-9 _ - = @ , . ; and at most %d of them", channel.MaxUserIDLength), "")
		return
	}
	// user_info is held for the connection's life and becomes the member's
	// user_info on every presence channel the user joins without
	// channel_data, so it gets the presence bound here.
	if len(ud.UserInfo) > s.app.MaxPresenceUserInfoBytes {
		s.sendError(CodeUnauthorized, fmt.Sprintf("Sign-in refused: user_info is %d bytes, at most %d allowed", len(ud.UserInfo), s.app.MaxPresenceUserInfoBytes), "")
		return
	}
	if s.user != nil {
		if s.user.ID != ud.ID {
			s.sendError(CodeUnauthorized, "Sign-in refused: connection is already signed in as another user", "")
		} else {
			s.send(signinSuccessFrame(d.UserData))
		}
		return
	}
	s.user = &UserData{ID: ud.ID, UserInfo: ud.UserInfo}
	s.markAuthed()
	s.send(signinSuccessFrame(d.UserData))
	own := channel.ServerToUserPrefix + ud.ID
	s.subs.add(subscription{ch: channel.Channel{Name: own, Kind: channel.ServerToUser}})
	s.fe.hub.Subscribe(s.app.ID, own, s)
	s.fe.hub.SignIn(s.app.ID, ud.ID, s)

	watch := ud.Watchlist
	if len(watch) > s.app.WatchlistLimit {
		watch = watch[:s.app.WatchlistLimit]
		s.sendError(CodeWatchlistLimit, fmt.Sprintf("Watchlist limit exceeded. Only the first %d user IDs are accepted.", s.app.WatchlistLimit), "")
	}
	// A copy, so the ids beyond the limit are not kept reachable; an id no
	// user can sign in with can never come online and is not held either
	// (the list is the backend's, but one id could be 60 KB long).
	watch = slices.DeleteFunc(slices.Clone(watch), func(id string) bool { return !channel.ValidUserID(id) })
	if len(watch) == 0 {
		return
	}
	s.watching = watch
	online := s.fe.hub.Watch(s.app.ID, s, s.watching)
	isOnline := make(map[string]bool, len(online))
	for _, id := range online {
		isOnline[id] = true
	}
	var offline []string
	for _, id := range s.watching {
		if !isOnline[id] {
			offline = append(offline, id)
		}
	}
	s.send(watchlistFrame(online, offline))
}

func (s *Session) markAuthed() {
	s.authed = true
	if s.signinDue != nil {
		s.signinDue.Stop()
	}
}

func (s *Session) publish(ctx context.Context, m broker.Message) {
	if err := s.fe.hub.Publish(ctx, m); err != nil {
		s.logError("publish failed", m.Channel, err)
		s.sendError(0, "Event could not be published, try again", m.Channel)
	}
}

// refuse reports a failed subscription both as pusher:subscription_error
// (which pusher-js and Laravel Echo route to the channel's error handlers)
// and as pusher:error (which other clients surface).
func (s *Session) refuse(channel, typ, msg string, status int, code Code) {
	s.fe.log.Debug("subscription refused", "app_id", s.app.ID, "socket_id", s.socketID, "channel", channel, "reason", msg)
	s.send(subscriptionErrorFrame(channel, typ, msg, status))
	s.sendError(code, msg, channel)
}

func (s *Session) refuseAuth(channel string, err error) {
	s.refuse(channel, errTypeAuth, authMessage(err), 401, CodeUnauthorized)
}

// authMessage words a token error the way Pusher does, without echoing the
// signature the client sent.
func authMessage(err error) string {
	switch {
	case errors.Is(err, auth.ErrMalformedToken):
		return "Invalid format: auth must have the format key:signature"
	case errors.Is(err, auth.ErrWrongKey):
		return "Invalid key in subscription auth data"
	default:
		return "Invalid signature: " + strings.TrimPrefix(err.Error(), auth.ErrBadSignature.Error()+": ")
	}
}

// onTimer is the session's one liveness timer. A client silent for the
// activity timeout gets a pusher:ping; one still silent a pong timeout
// after that is closed with 4201.
func (s *Session) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := time.Now()
	last := s.conn.LastRead()
	if !s.pingSent.IsZero() {
		if last.After(s.pingSent) {
			s.pingSent = time.Time{}
		} else if now.Sub(s.pingSent) >= s.fe.cfg.PongTimeout {
			s.send(errorFrame(CodePongTimeout, MsgPongTimeout, ""))
			s.conn.Close(int(CodePongTimeout), MsgPongTimeout)
			return
		} else {
			s.timer.Reset(s.fe.cfg.PongTimeout - now.Sub(s.pingSent))
			return
		}
	}
	if idle := now.Sub(last); idle < s.app.ActivityTimeout {
		s.timer.Reset(s.app.ActivityTimeout - idle)
		return
	}
	s.pingSent = now
	s.send(pingFrame)
	s.timer.Reset(s.fe.cfg.PongTimeout)
}

// onSigninDue closes a connection of an app that requires sign-in when it
// has neither signed in nor joined an authorized channel in time.
func (s *Session) onSigninDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.authed {
		return
	}
	s.send(errorFrame(CodeUnauthorized, MsgSigninTimeout, ""))
	s.conn.Close(int(CodeUnauthorized), MsgSigninTimeout)
}

// truncate shortens client text for an error message or a close reason:
// at most n bytes and an ellipsis, cut between characters, with invalid
// UTF-8 replaced, since a close reason must be UTF-8 (RFC 6455 §5.5.1).
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
