package pusher

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/jwtauth"
	"github.com/heraldhq/herald/internal/ratelimit"
	"github.com/heraldhq/herald/internal/transport"
)

// Session is the Pusher protocol state of one connection. It is driven by
// events: a message arrived (HandleMessage), a timer fired (onTimer,
// onSigninDue), off-loop work finished (the functions it queues with
// hub.Conn.Do report back under its lock), the connection ended
// (HandleClose). It owns no goroutine and never blocks: every broker call
// (presence, client-event publishing, the cache lookup) runs off the
// transport's loop, in order per connection.
//
// Locking: mu guards the fields below it. Deliver, CloseWith and the
// hub.User callbacks are called by other goroutines while the hub holds its
// own locks, so they never take mu; they only queue bytes on the transport,
// which has its own lock. The order is mu, then hub locks.
//
// An idle connection holds one Session, so it is kept to 128 bytes (a test
// pins it): what only some connections need lives behind rare.
type Session struct {
	fe  *FrontEnd
	app *apps.App
	hc  *hub.Conn
	// reason is why the server is closing the connection, plus one; zero
	// while the client is the one to end it.
	reason atomic.Uint32

	subSeq uint32 // identifies subscriptions, for off-loop results; under mu
	mu     sync.Mutex
	closed bool
	authed bool // signed in, or joined a private or presence channel
	// expiring is set while a subscription authorized by a JWT may expire;
	// the liveness timer then also fires at the earliest expiry.
	expiring bool
	subs     subscriptions
	// timer is the session's one timer (onTimer), armed from start on.
	timer hub.ConnTimer
	live  hub.Liveness
	// rare is made, under mu, by the first of start (when the app requires
	// sign-in), a client event, a presence join, a successful sign-in or a
	// subscription JWT checked off the loop, and never replaced: WatchlistChange, which
	// does not take mu, reads it only after the hub.Watch that follows its
	// making, and HandleMessage, which does not either, is on the loop
	// that makes it.
	rare *sessionRare
}

// sessionRare is the state of a session that must sign in or signed in,
// sent a client event, joined a presence channel, or watches users.
type sessionRare struct {
	// user is set by a successful pusher:signin; its Watchlist is the
	// honoured part of the one signed.
	user *UserData
	// userData is a digest of the user_data the connection signed in
	// with, for a second pusher:signin to be told apart; signinPending is
	// set until the sign-in's pusher:signin_success is sent.
	userData      [sha256.Size]byte
	signinPending bool
	rate          *ratelimit.Bucket // made by the first client event
	joins         *ratelimit.Bucket // made by the first presence join
	signinDue     hub.Timer

	// watchMu orders the watchlist's first list after the changes sent
	// while it was looked up; watchSeen, non-nil during the lookup,
	// records those changes, which are newer than the list's entries.
	// A leaf lock: WatchlistChange takes it, and not mu.
	watchMu   sync.Mutex
	watchSeen map[string]bool

	// holding is set while a subscription JWT is checked off the loop
	// (see checkOffLoop) and until what arrived meanwhile, held, has been
	// handled; the loop reads it without mu. checking and verdict are
	// the check's, under mu.
	holding   atomic.Bool
	checking  bool
	verdict   *jwtVerdict
	held      [][]byte
	heldBytes int
}

// more returns s.rare, making it if need be. s.mu is held.
func (s *Session) more() *sessionRare {
	if s.rare == nil {
		s.rare = &sessionRare{}
	}
	return s.rare
}

// signedIn is the user of a successful pusher:signin; nil: none. s.mu is
// held.
func (s *Session) signedIn() *UserData {
	if s.rare == nil {
		return nil
	}
	return s.rare.user
}

// sessionAlarm is the Session as its timer's hub.Alarm, so that Session
// itself exports no Alarm method that others could call.
type sessionAlarm Session

func (a *sessionAlarm) Alarm() { (*Session)(a).onTimer() }

// logError logs with the session's identity. Attributes are built per call
// rather than kept in a per-session logger: idle connections must stay small.
// At most errLogBurst lines a second are written; the next one allowed says
// how many were left out.
func (s *Session) logError(msg, channel string, err error) {
	ok, suppressed := s.fe.errLog.Allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		s.fe.log.Error(msg, "app_id", s.app.ID, "socket_id", s.socketID(), "channel", channel, "err", err, "suppressed", suppressed)
		return
	}
	s.fe.log.Error(msg, "app_id", s.app.ID, "socket_id", s.socketID(), "channel", channel, "err", err)
}

const errLogBurst = 10

var (
	_ hub.Client        = (*Session)(nil)
	_ hub.User          = (*Session)(nil)
	_ transport.Handler = (*Session)(nil)
)

func newSession(fe *FrontEnd, app *apps.App, hc *hub.Conn) *Session {
	s := &Session{fe: fe, app: app, hc: hc}
	s.timer.Init((*sessionAlarm)(s))
	return s
}

// conn is the session's transport.
func (s *Session) conn() transport.Conn { return s.hc.Transport() }

// socketID is the connection's Pusher socket id.
func (s *Session) socketID() string { return s.hc.SocketID() }

// start sends connection_established and arms the timers.
func (s *Session) start() {
	s.send(connectionEstablishedFrame(s.socketID(), int(s.app.ActivityTimeout/time.Second)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fe.clock.Arm(&s.timer, s.app.ActivityTimeout)
	if s.app.RequireSignin {
		s.more().signinDue = s.fe.clock.AfterFunc(s.app.SigninTimeout, s.onSigninDue)
	}
}

// SocketID implements hub.Subscriber.
func (s *Session) SocketID() string { return s.hc.SocketID() }

// Protocol implements hub.Client.
func (s *Session) Protocol() string { return Protocol }

// Deliver implements hub.Subscriber: the publication's message is encoded
// once and shared by every subscriber.
func (s *Session) Deliver(p *hub.Publication) {
	s.hc.Send(p.Payload(hub.EncodingPusher, EncodeEvent))
}

// send queues a message; a client that does not read is cut off (see
// hub.Conn.Send).
func (s *Session) send(frame []byte) { s.hc.Send(frame) }

func (s *Session) sendError(code Code, msg, channel string) {
	s.send(errorFrame(code, msg, channel))
}

// CloseWith implements hub.Client: the connection ends with the Pusher code
// for reason, announced first as a pusher:error because that is where
// Pusher clients look for it. A slow consumer gets the close alone: its
// queue is what is full.
func (s *Session) CloseWith(reason hub.CloseReason) {
	s.reason.CompareAndSwap(0, uint32(reason)+1)
	code, msg := closeCode(reason)
	if reason == hub.ReasonSlowConsumer {
		s.conn().Abort(int(code), msg)
		return
	}
	s.conn().Send(errorFrame(code, msg, ""))
	s.conn().Close(int(code), msg)
}

// closeCode is the one mapping of close reasons to Pusher close codes.
func closeCode(r hub.CloseReason) (Code, string) {
	switch r {
	case hub.ReasonSlowConsumer:
		return CodeOverCapacity, MsgSlowClient
	case hub.ReasonPongTimeout:
		return CodePongTimeout, MsgPongTimeout
	case hub.ReasonSigninTimeout:
		return CodeUnauthorized, MsgSigninTimeout
	case hub.ReasonTerminated:
		return CodeUnauthorized, MsgTerminated
	case hub.ReasonShutdown:
		return CodeReconnect, MsgShutdown
	case hub.ReasonOverCapacity:
		return CodeOverCapacity, MsgOverCapacity
	case hub.ReasonOverQuota:
		return CodeOverQuota, MsgOverQuota
	case hub.ReasonUnauthorized:
		return CodeUnauthorized, "Unauthorized"
	}
	return CodeReconnect, "Connection closed; reconnect"
}

// WatchlistChange implements hub.User.
func (s *Session) WatchlistChange(userID string, online bool) {
	r := s.rare // made before the hub.Watch that has this called
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.watchSeen != nil {
		r.watchSeen[userID] = online
	}
	if online {
		s.send(watchlistFrame([]string{userID}, nil))
	} else {
		s.send(watchlistFrame(nil, []string{userID}))
	}
}

// HandleMessage implements transport.Handler. It does not block.
func (s *Session) HandleMessage(data []byte) {
	// s.rare is only made on the loop, or already there when made.
	if r := s.rare; r != nil && r.holding.Load() && s.hold(data) {
		return
	}
	s.handleMessage(data)
}

// handleMessage handles a client message, on the loop or, for one held,
// in the off-loop work that resumes the connection (resumeHeld).
func (s *Session) handleMessage(data []byte) {
	// Once the server has begun to close the connection (terminated,
	// timed out, cut off as slow), nothing the client still sends while
	// the close completes is acted on.
	if s.reason.Load() != 0 {
		return
	}
	// The subscriptions every client starts with are decoded in one pass;
	// the rest, and any subscribe in a form that pass does not take, by
	// encoding/json.
	sd, fast := parseSubscribe(data)
	var m Message
	if fast {
		m.Event = "pusher:subscribe"
	} else {
		var err error
		if m, err = ParseMessage(data); err != nil {
			s.sendError(0, "Invalid message: "+err.Error(), "")
			return
		}
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
		if !fast {
			var err error
			if sd, err = decodeSubscribe(m); err != nil {
				// A wrong type leaves the other fields decoded: when the
				// channel is among them, its subscription is what fails.
				var te *json.UnmarshalTypeError
				if sd.Channel != "" && errors.As(err, &te) {
					s.refuse(sd.Channel, errTypeAuth, "Invalid pusher:subscribe: "+truncate(te.Field, 32)+" must be a string", 400, 0, hub.RefusedInvalid)
					return
				}
				s.sendError(0, "Invalid pusher:subscribe: "+ErrNoChannel.Error(), "")
				s.fe.hub.SubscriptionRefused(s.app.ID, hub.RefusedInvalid)
				return
			}
		}
		s.handleSubscribe(sd)
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

// HandleClose implements transport.Handler: it undoes everything the
// session registered, so no other connection sees a ghost. Presence leaves
// are queued off the loop, after any join still under way.
func (s *Session) HandleClose(err error) {
	reason := hub.ReasonClientClosed
	if errors.Is(err, transport.ErrViolation) {
		reason = hub.ReasonProtocolError
	}
	if r := s.reason.Load(); r != 0 {
		reason = hub.CloseReason(r - 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.fe.clock.Disarm(&s.timer)
	if s.rare != nil && s.rare.signinDue != nil {
		s.rare.signinDue.Stop()
	}
	for _, sub := range s.subs.all() {
		s.leave(sub)
	}
	s.subs = subscriptions{}
	if u := s.signedIn(); u != nil {
		s.fe.hub.Unwatch(s.app.ID, s, u.Watchlist)
		s.fe.hub.SignOut(s.app.ID, u.ID, s)
	}
	s.hc.Closed(reason)
	if reason != hub.ReasonClientClosed {
		s.fe.log.Debug("connection closed", "app_id", s.app.ID, "socket_id", s.socketID(), "reason", reason.String(), "err", err)
	}
}

// decodeSubscribe decodes the data of a pusher:subscribe, which must name a
// channel.
func decodeSubscribe(m Message) (SubscribeData, error) {
	var d SubscribeData
	if err := DecodeData(m.Data, &d); err != nil {
		return d, err
	}
	if d.Channel == "" {
		return d, ErrNoChannel
	}
	return d, nil
}

func (s *Session) handleSubscribe(d SubscribeData) {
	ch, err := channel.Parse(d.Channel, s.app.MaxChannelNameLength)
	if err != nil {
		s.refuse(d.Channel, errTypeChannel, "Invalid channel name: "+err.Error(), 400, 0, hub.RefusedInvalid)
		return
	}
	if sub, ok := s.subs.get(ch.Name); ok {
		// pusher-js may re-subscribe after a quick unsubscribe/subscribe;
		// answering success again keeps its state machine consistent.
		s.resendSucceeded(sub)
		return
	}
	if ch.Kind != channel.ServerToUser && s.subscriptionCount() >= s.app.MaxSubscriptionsPerConnection {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("Subscription limit reached: at most %d channels per connection", s.app.MaxSubscriptionsPerConnection), 403, 0, hub.RefusedLimit)
		return
	}
	var expires time.Time // of a JWT-authorized subscription
	switch ch.Kind {
	case channel.ServerToUser:
		if u := s.signedIn(); u == nil || ch.Name != channel.ServerToUserPrefix+u.ID {
			s.refuse(ch.Name, errTypeAuth, "Only the signed-in user may subscribe to its own server-to-user channel", 403, CodeUnauthorized, hub.RefusedAuth)
			return
		}
		// Sign-in subscribed the connection, and a subscribe while that
		// subscription stands is answered above; here the client left the
		// channel and joins it again.
		s.subscribeOwn(ch.Name, subscriptionSucceededFrame(ch.Name), true)
		return
	case channel.Private, channel.Encrypted:
		if s.isJWT(d.Auth) {
			if s.checkOffLoop(ch, d) {
				return
			}
			c, err := s.verifyChannelJWT(ch, d.Auth)
			if err != nil {
				s.refuseAuth(ch.Name, err)
				return
			}
			expires = c.Expires
		} else if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.ChannelString(s.socketID(), ch.Name, d.ChannelData)); err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
	case channel.Presence:
		s.subscribePresence(ch, d)
		return
	}
	if ch.NeedsAuth() {
		s.markAuthed()
	}
	if !ch.Cache {
		// Confirmed at once when the node already receives the channel's
		// cluster messages. Otherwise (the first subscriber of a channel
		// on a node of a cluster) the node subscribes to them now, and
		// the confirmation waits for that, so that an event published
		// after it (through any node) is never missed. The hub judges
		// readiness with this subscriber counted, under the channel's
		// lock: a channel losing its last local subscriber on another
		// loop at the same moment is not taken for ready.
		sub := s.newSub(ch, "", expires)
		sub.pending, _ = s.fe.hub.SubscribeReady(s.app.ID, ch.Name, s, func() { s.send(subscriptionSucceededFrame(ch.Name)) })
		s.subs.add(sub)
		if sub.pending == nil {
			return
		}
		s.queueSubscription(sub, func(ctx context.Context) {
			if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, ch.Name); err != nil {
				s.logError("channel subscription on the cluster failed", ch.Name, err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.activate(sub, func() { s.send(subscriptionSucceededFrame(ch.Name)) })
		})
		return
	}
	// A cache channel's confirmation is followed by its last event or a
	// cache miss, which the broker knows: the lookup runs off the loop and
	// the channel's events are held until the answer is sent.
	sub := s.newSub(ch, "", expires)
	sub.pending, _ = s.fe.hub.SubscribePending(s.app.ID, ch.Name, s)
	s.subs.add(sub)
	s.queueSubscription(sub, func(ctx context.Context) {
		if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, ch.Name); err != nil {
			s.logError("channel subscription on the cluster failed", ch.Name, err)
		}
		cached, ok, err := s.fe.hub.CachedEvent(ctx, s.app.ID, ch.Name)
		if err != nil {
			s.logError("cache lookup failed", ch.Name, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.activate(sub, func() {
			s.send(subscriptionSucceededFrame(ch.Name))
			s.sendCached(sub, cached.Message, ok)
		})
	})
}

// queueSubscription queues the off-loop work that confirms sub, or, when
// the connection already has too much in flight (a client asking faster
// than the broker answers), undoes sub and refuses it.
func (s *Session) queueSubscription(sub subscription, fn func(ctx context.Context)) {
	if s.hc.TryDo(fn) {
		return
	}
	s.subs.remove(sub.ch.Name)
	s.fe.hub.Unsubscribe(s.app.ID, sub.ch.Name, sub.pending)
	s.refuse(sub.ch.Name, errTypeLimit, fmt.Sprintf("Too many requests in progress: at most %d per connection", hub.MaxPendingOps), 429, 0, hub.RefusedLimit)
}

// newSub returns a subscription with a fresh identity. A subscription
// authorized by a JWT that expires ends the connection at its expiry.
func (s *Session) newSub(ch channel.Channel, userID string, expires time.Time) subscription {
	s.subSeq++
	sub := subscription{ch: ch, id: uint64(s.subSeq)}
	if userID != "" || !expires.IsZero() || ch.Kind == channel.Presence {
		sub.grant = &subGrant{userID: userID}
	}
	if ch.Kind == channel.Presence {
		sub.grant.s = s // its subscriber in the hub
	}
	if !expires.IsZero() {
		sub.grant.expires = unixNano(expires)
		s.expiring = true
		// Sooner than the timer's next liveness check, if it is: onTimer
		// closes the connection at the expiry and re-arms for the check.
		s.fe.clock.ArmWithin(&s.timer, expires.Sub(s.fe.clock.Now()))
	}
	return sub
}

// unixNano is t in unix nanoseconds, held to the int64 range: a token may
// name an expiry past 2262 ("exp": 9999999999 is a common "never"), whose
// UnixNano would wrap to a date in the past and end the subscription at
// once.
func unixNano(t time.Time) int64 {
	switch {
	case t.After(maxUnixNano):
		return math.MaxInt64
	case t.Before(minUnixNano):
		return math.MinInt64
	}
	return t.UnixNano()
}

var (
	maxUnixNano = time.Unix(0, math.MaxInt64)
	minUnixNano = time.Unix(0, math.MinInt64)
)

// current reports whether sub is still the connection's subscription to its
// channel: off-loop results for one that was left meanwhile are dropped.
func (s *Session) current(sub subscription) bool {
	if s.closed {
		return false
	}
	got, ok := s.subs.get(sub.ch.Name)
	return ok && got.id == sub.id
}

// activate confirms a pending subscription with confirm, if it is still
// current, and from then on lets its channel's events through.
func (s *Session) activate(sub subscription, confirm func()) {
	if !s.current(sub) || sub.pending == nil {
		return
	}
	if sub.pending.Activate(confirm) {
		s.subs.setActive(sub.ch.Name)
	}
}

// subscriptionCount is the number of subscriptions counted against the
// app's MaxSubscriptionsPerConnection. The signed-in user's own
// #server-to-user- channel is left out: sign-in adds it on the client's
// behalf, at most one per connection, so a connection at its limit can still
// sign in and a signed-in one keeps its whole allowance.
func (s *Session) subscriptionCount() int {
	n := len(s.subs.all())
	if u := s.signedIn(); u != nil {
		if _, ok := s.subs.get(channel.ServerToUserPrefix + u.ID); ok {
			n--
		}
	}
	return n
}

func (s *Session) subscribePresence(ch channel.Channel, d SubscribeData) {
	var member ChannelData
	var expires time.Time
	switch {
	case s.isJWT(d.Auth):
		if s.checkOffLoop(ch, d) {
			return
		}
		// The member is the token's: user_id from sub, user_info from info.
		c, err := s.verifyChannelJWT(ch, d.Auth)
		if err == nil && c.Sub == "" {
			err = fmt.Errorf("%w: a presence channel needs a sub claim", errChannelToken)
		}
		if err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
		member = ChannelData{UserID: c.Sub, UserInfo: c.Info}
		expires = c.Expires
	case d.ChannelData != "":
		if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.ChannelString(s.socketID(), ch.Name, d.ChannelData)); err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
		cd, err := ParseChannelData(d.ChannelData)
		if err != nil {
			s.refuse(ch.Name, errTypeAuth, "Invalid channel_data: "+err.Error(), 400, 0, hub.RefusedInvalid)
			return
		}
		member = cd
	case s.signedIn() != nil:
		// A signed-in connection may join with a token over the bare
		// channel string; it joins as its signed-in user.
		if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.ChannelString(s.socketID(), ch.Name, "")); err != nil {
			s.refuseAuth(ch.Name, err)
			return
		}
		u := s.signedIn()
		member = ChannelData{UserID: u.ID, UserInfo: u.UserInfo}
	default:
		s.refuse(ch.Name, errTypeAuth, "Presence subscription needs channel_data", 400, CodeUnauthorized, hub.RefusedAuth)
		return
	}
	// The limits apply to the id as announced: a numeric user_id counts as
	// its string form.
	if channel.UserIDTooLong(member.UserID) {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("user_id is %d characters, at most %d allowed", utf8.RuneCountInString(member.UserID), channel.MaxUserIDLength), 400, 0, hub.RefusedLimit)
		return
	}
	if len(member.UserInfo) > s.app.MaxPresenceUserInfoBytes {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("user_info is %d bytes, at most %d allowed", len(member.UserInfo), s.app.MaxPresenceUserInfoBytes), 400, 0, hub.RefusedLimit)
		return
	}
	if !s.takeJoin() || !s.fe.hub.TakeJoin(s.app.ID, member.UserID, userBudget(s.app)) {
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("Presence subscription rejected due to rate limit (%d per second)", s.app.PresenceJoinRate), 429, 0, hub.RefusedLimit)
		return
	}
	s.markAuthed()
	// The subscription is in the channel from now on, its events held until
	// the member list is sent, so a member who joins meanwhile is either in
	// the list or announced afterwards, and nothing arrives before the
	// confirmation.
	sub := s.newSub(ch, member.UserID, expires)
	// Through the grant, which keeps the member's own announcements from
	// it (see subGrant.Deliver).
	sub.pending, _ = s.fe.hub.SubscribePending(s.app.ID, ch.Name, sub.grant)
	s.subs.add(sub)
	bm := broker.Member{UserID: member.UserID, Info: member.UserInfo}
	maxMembers := s.app.MaxPresenceMembers
	s.queueSubscription(sub, func(ctx context.Context) {
		// Interest first: a member who joins on another node after this
		// one's member list was read is announced to this connection.
		if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, ch.Name); err != nil {
			s.logError("channel subscription on the cluster failed", ch.Name, err)
		}
		first, members, err := s.fe.hub.JoinPresence(ctx, s.hc, ch.Name, bm, maxMembers)
		var cached broker.Cached
		var hasCached bool
		if err == nil && ch.Cache {
			var cerr error
			cached, hasCached, cerr = s.fe.hub.CachedEvent(ctx, s.app.ID, ch.Name)
			if cerr != nil {
				s.logError("cache lookup failed", ch.Name, cerr)
			}
		}
		s.mu.Lock()
		if err != nil {
			if s.current(sub) {
				s.subs.remove(ch.Name)
				s.fe.hub.Unsubscribe(s.app.ID, ch.Name, sub.pending)
				if errors.Is(err, broker.ErrMemberLimit) {
					s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("Presence channel is full: at most %d members", maxMembers), 403, 0, hub.RefusedLimit)
				} else {
					s.logError("presence join failed", ch.Name, err)
					s.refuse(ch.Name, errTypeLimit, "Presence is unavailable, try again", 503, 0, hub.RefusedUnavailable)
				}
			}
			s.mu.Unlock()
			return
		}
		s.activate(sub, func() {
			s.send(presenceSucceededFrame(ch.Name, members))
			if ch.Cache {
				s.sendCached(sub, cached.Message, hasCached)
			}
		})
		s.mu.Unlock()
		// Announced after the joiner's confirmation has been queued, and
		// even if it left meanwhile: its leave, queued after this, then
		// announces the removal, so every member sees a consistent list.
		if first {
			if err := s.fe.hub.AnnounceJoin(ctx, s.hc, ch.Name, bm); err != nil {
				s.logError("presence announcement failed", ch.Name, err)
			}
		}
	})
}

// resendSucceeded answers a subscribe to a channel the connection is in.
// One still pending is confirmed when its work is done.
func (s *Session) resendSucceeded(sub subscription) {
	switch {
	case sub.pending != nil:
	case sub.ch.Kind != channel.Presence:
		s.send(subscriptionSucceededFrame(sub.ch.Name))
	default:
		// Dropped when too much is in flight: the client already has its
		// confirmation, this is only its echo.
		s.hc.TryDo(func(ctx context.Context) {
			members, err := s.fe.hub.Members(ctx, s.app.ID, sub.ch.Name)
			if err != nil {
				s.logError("presence members failed", sub.ch.Name, err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.current(sub) {
				s.send(presenceSucceededFrame(sub.ch.Name, members))
			}
		})
	}
}

// sendCached gives a new subscriber of a cache channel the channel's last
// event, or pusher:cache_miss. It runs inside the subscription's
// activation: an event published since the subscription began is held for
// it and follows, so it is not sent twice.
func (s *Session) sendCached(sub subscription, m broker.Message, ok bool) {
	switch {
	case !ok:
		s.send(cacheMissFrame(sub.ch.Name))
	case !sub.pending.Holding(m):
		s.send(EncodeEvent(&m))
	}
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

// leave undoes a subscription at once; for presence it queues the leave
// off the loop (after the join, if that is still under way), which
// announces the member's departure when this was the user's last
// connection.
func (s *Session) leave(sub subscription) {
	name := sub.ch.Name
	s.fe.hub.Unsubscribe(s.app.ID, name, sub.subscriber(s))
	if sub.ch.Kind != channel.Presence {
		return
	}
	hc, userID := s.hc, sub.userID()
	hc.Do(func(ctx context.Context) {
		if err := s.fe.hub.LeavePresence(ctx, hc, name, userID); err != nil {
			s.logError("presence leave failed", name, err)
		}
	})
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
	case sub.pending != nil:
		// Not confirmed yet: a presence join may still be refused (a full
		// channel), and its members must not hear from a connection that
		// never became one of them.
		s.sendError(CodeClientEventRefused, "Client event rejected: subscription to channel "+truncate(m.Channel, 64)+" not yet succeeded", m.Channel)
	case channel.EventNameTooLong(m.Event, apps.DefaultMaxEventNameLength):
		// Characters, as the REST API counts them.
		s.sendError(CodeClientEventRefused, "Client event rejected: event name too long", m.Channel)
	case len(m.Data) > s.app.MaxEventBytes:
		s.sendError(CodeClientEventRefused, fmt.Sprintf("Client event rejected: data over %d bytes", s.app.MaxEventBytes), m.Channel)
	case !s.takeToken():
		s.sendError(CodeClientEventRefused, fmt.Sprintf("Client event rejected due to rate limit (%d per second)", s.app.ClientEventRate), m.Channel)
	default:
		data := m.Data
		if len(data) == 0 {
			data = []byte("null")
		}
		msg := broker.Message{
			AppID: s.app.ID, Channel: m.Channel, Event: m.Event,
			Data: string(data), DataJSON: true, Exclude: s.socketID(),
		}
		if sub.ch.Kind == channel.Presence {
			msg.UserID = sub.userID()
		}
		s.publish(msg)
	}
}

func (s *Session) handleSignin(m Message) {
	var d SigninData
	if err := DecodeData(m.Data, &d); err != nil {
		s.sendError(CodeUnauthorized, "Invalid pusher:signin data", "")
		return
	}
	if err := auth.VerifyToken(s.app.Key, s.app.Secret, d.Auth, auth.UserString(s.socketID(), d.UserData)); err != nil {
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
	// A watchlist names users, each by the rule of the sign-in id: an
	// entry no user could sign in with is the backend's error, refused
	// like a bad id rather than dropped, which would leave the app waiting
	// for a user it can never hear of. Entries beyond the watchlist limit
	// too: the whole user_data is checked, as signed.
	for i, id := range ud.Watchlist {
		if !channel.ValidUserID(id) {
			s.sendError(CodeUnauthorized, fmt.Sprintf("Sign-in refused: watchlist entry %d is not a valid user id: at most %d of A-Z a-z 0-9 _ - = @ , . ;", i, channel.MaxUserIDLength), "")
			return
		}
	}
	// user_info is held for the connection's life and becomes the member's
	// user_info on every presence channel the user joins without
	// channel_data, so it gets the presence bound here.
	if len(ud.UserInfo) > s.app.MaxPresenceUserInfoBytes {
		s.sendError(CodeUnauthorized, fmt.Sprintf("Sign-in refused: user_info is %d bytes, at most %d allowed", len(ud.UserInfo), s.app.MaxPresenceUserInfoBytes), "")
		return
	}
	// A connection signs in once: its first valid sign-in decides the
	// user, its user_info and its watchlist for the connection's life.
	// pusher-js sends one per connection; a second one is answered
	// success only when it is the same sign-in and the first has been
	// answered, so that no answer precedes the first's and the client
	// never takes other user_data for what the server holds.
	if u := s.signedIn(); u != nil {
		switch {
		case u.ID != ud.ID:
			s.sendError(CodeUnauthorized, MsgSigninOtherUser, "")
		case s.rare.signinPending:
			s.sendError(CodeUnauthorized, MsgSigninInProgress, "")
		case sha256.Sum256([]byte(d.UserData)) != s.rare.userData:
			s.sendError(CodeUnauthorized, MsgSigninOtherUserData, "")
		default:
			s.send(signinSuccessFrame(d.UserData))
		}
		return
	}
	// The user's first connection on the node takes a token of its
	// sign-in budget, shared with its Centrifugo connections: a sign-in
	// and the close that follows it each tell the user's watchers, and a
	// fresh connection per round escapes any per-connection bound.
	if !s.fe.hub.SignIn(s.app.ID, ud.ID, s, userBudget(s.app)) {
		s.sendError(CodeUnauthorized, fmt.Sprintf(MsgSigninRate, s.app.PresenceJoinRate), "")
		return
	}
	r := s.more()
	r.user = &UserData{ID: ud.ID, UserInfo: ud.UserInfo}
	r.userData = sha256.Sum256([]byte(d.UserData))
	s.markAuthed()
	// The user's own channel carries send-to-user events: signin_success
	// is its confirmation, sent once the node receives the channel's
	// cluster messages (at once on one node), so that an event sent to
	// the user after the client saw it is never missed.
	s.subscribeOwn(channel.ServerToUserPrefix+ud.ID, signinSuccessFrame(d.UserData), false)

	watch := ud.Watchlist
	if len(watch) > s.app.WatchlistLimit {
		watch = watch[:s.app.WatchlistLimit]
		s.sendError(CodeWatchlistLimit, fmt.Sprintf("Watchlist limit exceeded. Only the first %d user IDs are accepted.", s.app.WatchlistLimit), "")
	}
	// A copy, so the ids beyond the limit are not kept reachable. An id
	// named again is left out: it is watched once, and the first list,
	// which pusher-js hands the app as is, names it once.
	seen := make(map[string]struct{}, len(watch))
	watch = slices.DeleteFunc(slices.Clone(watch), func(id string) bool {
		if _, dup := seen[id]; dup {
			return true
		}
		seen[id] = struct{}{}
		return false
	})
	if len(watch) == 0 {
		return
	}
	r.user.Watchlist = watch
	r.watchMu.Lock()
	r.watchSeen = map[string]bool{}
	r.watchMu.Unlock()
	s.fe.hub.Watch(s.app.ID, s, watch)
	// Who is online is the cluster's to say: asked off the loop, after the
	// watcher is registered, so a change meanwhile is not missed. A change
	// sent before the list is newer than what the list says of that user
	// (the lookup may have read it before the change), so the list leaves
	// such users out rather than undo the change.
	s.hc.Do(func(ctx context.Context) {
		online, err := s.fe.hub.OnlineUsers(ctx, s.app.ID, watch)
		if err != nil {
			s.logError("watchlist lookup failed", "", err)
		}
		isOnline := make(map[string]bool, len(online))
		for _, id := range online {
			isOnline[id] = true
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		r.watchMu.Lock()
		defer r.watchMu.Unlock()
		seen := r.watchSeen
		r.watchSeen = nil
		if err != nil || s.closed {
			return
		}
		var on, off []string
		for _, id := range watch {
			if _, changed := seen[id]; changed {
				continue
			}
			if isOnline[id] {
				on = append(on, id)
			} else {
				off = append(off, id)
			}
		}
		if len(on)+len(off) > 0 {
			s.send(watchlistFrame(on, off))
		}
	})
}

// subscribeOwn subscribes the connection to own, the signed-in user's
// channel, and sends success once the node receives the channel's cluster
// messages (at once on one node). Sign-in, once per connection, always
// queues that wait; a client joining the channel again (after leaving it)
// may do so at will, so its wait counts against the connection's pending
// work like any subscription's.
//
// The sign-in's success is sent even when the client left the channel
// meanwhile: it answers the pusher:signin, which pusher-js waits for.
func (s *Session) subscribeOwn(own string, success []byte, again bool) {
	sub := s.newSub(channel.Channel{Name: own, Kind: channel.ServerToUser}, "", time.Time{})
	sub.pending, _ = s.fe.hub.SubscribeReady(s.app.ID, own, s, func() { s.send(success) })
	s.subs.add(sub)
	if sub.pending == nil {
		return
	}
	wait := func(ctx context.Context) {
		if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, own); err != nil {
			s.logError("user channel subscription on the cluster failed", own, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		sent := false
		s.activate(sub, func() { sent = true; s.send(success) })
		if !again {
			s.rare.signinPending = false
			if !sent && !s.closed {
				s.send(success)
			}
		}
	}
	if again {
		s.queueSubscription(sub, wait)
		return
	}
	s.rare.signinPending = true
	s.hc.Do(wait)
}

// takeToken spends one of the connection's client-event tokens. The bucket
// starts full at the first client event: most connections never send one,
// and an idle connection should not carry it.
func (s *Session) takeToken() bool {
	now := s.fe.clock.Now()
	r := s.more()
	if r.rate == nil {
		b := ratelimit.New(s.app.ClientEventRate, now)
		r.rate = &b
	}
	return r.rate.Take(now)
}

// takeJoin spends one of the connection's presence-join tokens (see
// apps.App.PresenceJoinRate). Only joins are counted: a leave follows a
// join, so bounding joins bounds the member events one connection can make
// a channel's members receive. The member's user has a budget of its own
// on the node (hub.TakeJoin), taken after this one, for the user who joins
// from a fresh connection every round.
func (s *Session) takeJoin() bool {
	now := s.fe.clock.Now()
	r := s.more()
	if r.joins == nil {
		b := ratelimit.NewBurst(s.app.PresenceJoinRate, s.app.PresenceJoinBurst(), now)
		r.joins = &b
	}
	return r.joins.Take(now)
}

// userBudget is what one user may do on the node per second, joins and
// sign-ins each: presence_join_rate, in its bursts.
func userBudget(a *apps.App) hub.Budget {
	return hub.Budget{Rate: a.PresenceJoinRate, Burst: a.PresenceJoinBurst()}
}

func (s *Session) markAuthed() {
	s.authed = true
	if s.rare != nil && s.rare.signinDue != nil {
		s.rare.signinDue.Stop()
	}
}

// publish sends a client event off the loop; the connection's events keep
// their order.
func (s *Session) publish(m broker.Message) {
	ok := s.hc.TryDo(func(ctx context.Context) {
		if err := s.fe.hub.Publish(ctx, m, hub.SourceClient); err != nil {
			s.logError("publish failed", m.Channel, err)
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.closed {
				s.sendError(0, "Event could not be published, try again", m.Channel)
			}
		}
	})
	if !ok {
		s.sendError(CodeClientEventRefused, fmt.Sprintf("Client event rejected: %d requests of this connection are still in progress", hub.MaxPendingOps), m.Channel)
	}
}

// refuse reports a failed subscription both as pusher:subscription_error
// (which pusher-js and Laravel Echo route to the channel's error handlers)
// and as pusher:error (which other clients surface).
func (s *Session) refuse(channel, typ, msg string, status int, code Code, why hub.Refusal) {
	s.fe.log.Debug("subscription refused", "app_id", s.app.ID, "socket_id", s.socketID(), "channel", channel, "reason", msg)
	s.fe.hub.SubscriptionRefused(s.app.ID, why)
	s.send(subscriptionErrorFrame(channel, typ, msg, status))
	s.sendError(code, msg, channel)
}

// errChannelToken wraps every refusal of a subscription JWT.
var errChannelToken = errors.New("Invalid subscription token")

// isJWT reports whether a subscribe's auth is to be read as a subscription
// JWT: the app allows them, and it is not key:signature (a JWT has no ':',
// an app key cannot have one).
func (s *Session) isJWT(token string) bool {
	return s.app.PusherJWTAuth && token != "" && !strings.Contains(token, ":")
}

// verifyChannelJWT checks a subscription JWT given as the auth of a
// subscribe to ch: validly signed and unexpired, for this channel, and for
// this connection: client is its socket id, or sub the user it signed in
// as; each of them that is present must match.
func (s *Session) verifyChannelJWT(ch channel.Channel, token string) (jwtauth.SubscribeClaims, error) {
	now := s.fe.clock.Now()
	c, err := s.subClaims(token, now)
	switch {
	case errors.Is(err, jwtauth.ErrExpired), err == nil && !c.Expires.IsZero() && !now.Before(c.Expires):
		// The second: an expire_at already passed, which would end the
		// connection (4200) as soon as it subscribed.
		return c, fmt.Errorf("%w: expired", errChannelToken)
	case err != nil:
		return c, fmt.Errorf("%w: bad signature or claims", errChannelToken)
	case c.Channel != ch.Name:
		return c, fmt.Errorf("%w: issued for another channel", errChannelToken)
	}
	bound := false
	if c.Client != "" {
		if c.Client != s.socketID() {
			return c, fmt.Errorf("%w: issued for another socket id", errChannelToken)
		}
		bound = true
	}
	if u := s.signedIn(); c.Sub != "" && u != nil {
		if c.Sub != u.ID {
			return c, fmt.Errorf("%w: issued for another user", errChannelToken)
		}
		bound = true
	}
	if !bound {
		return c, fmt.Errorf("%w: needs client (the socket id) or sub (the signed-in user)", errChannelToken)
	}
	return c, nil
}

func (s *Session) refuseAuth(channel string, err error) {
	s.refuse(channel, errTypeAuth, authMessage(err), 401, CodeUnauthorized, hub.RefusedAuth)
}

// authMessage words a token error the way Pusher does, without echoing the
// signature the client sent.
func authMessage(err error) string {
	switch {
	case errors.Is(err, auth.ErrMalformedToken):
		return "Invalid format: auth must have the format key:signature"
	case errors.Is(err, auth.ErrWrongKey):
		return "Invalid key in subscription auth data"
	case errors.Is(err, errChannelToken):
		return err.Error()
	default:
		return "Invalid signature: " + strings.TrimPrefix(err.Error(), auth.ErrBadSignature.Error()+": ")
	}
}

// onTimer is the session's one timer: liveness (see hub.Liveness) and the
// expiry of JWT-authorized subscriptions.
func (s *Session) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := s.fe.clock.Now()
	var due int64
	if s.expiring {
		due = s.nextExpiry()
		if due != 0 && due <= now.UnixNano() {
			s.closeTokenExpired()
			return
		}
		s.expiring = due != 0
	}
	action, next := s.live.Check(now, s.conn().LastRead(), s.app.ActivityTimeout, s.fe.cfg.PongTimeout)
	if action == hub.LiveTimeout {
		s.CloseWith(hub.ReasonPongTimeout)
		return
	}
	if action == hub.LivePing {
		s.send(pingFrame)
	}
	if due != 0 {
		next = min(next, time.Duration(due-now.UnixNano()))
	}
	s.fe.clock.Arm(&s.timer, next)
}

// nextExpiry is the earliest expiry of the connection's JWT-authorized
// subscriptions, in unix nanoseconds; 0: none expires.
func (s *Session) nextExpiry() int64 {
	var due int64
	for _, sub := range s.subs.all() {
		if e := sub.expires(); e != 0 && (due == 0 || e < due) {
			due = e
		}
	}
	return due
}

// closeTokenExpired ends a connection one of whose subscription JWTs has
// expired with 4200: pusher-js reconnects at once and, resubscribing, asks
// the backend for fresh tokens.
func (s *Session) closeTokenExpired() {
	s.reason.CompareAndSwap(0, uint32(hub.ReasonUnauthorized)+1)
	s.conn().Send(errorFrame(CodeReconnect, MsgTokenExpired, ""))
	s.conn().Close(int(CodeReconnect), MsgTokenExpired)
}

// onSigninDue closes a connection of an app that requires sign-in when it
// has neither signed in nor joined an authorized channel in time.
func (s *Session) onSigninDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.authed {
		return
	}
	s.CloseWith(hub.ReasonSigninTimeout)
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
