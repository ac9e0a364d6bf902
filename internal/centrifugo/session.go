package centrifugo

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/jwtauth"
	"github.com/heraldhq/herald/internal/ratelimit"
	"github.com/heraldhq/herald/internal/transport"
)

// Session is the Centrifugo protocol state of one connection, driven by
// events as the Pusher session is: a message (HandleMessage), its one timer
// (onTimer: the connect deadline, pings, pong deadline, connection and
// subscription expiry), off-loop work reporting back under mu, and the
// end of the connection (HandleClose). It never blocks.
//
// Locking: mu guards the fields below it. Deliver and CloseWith are called
// with hub locks held and never take mu. The order is mu, then hub locks,
// then jlMu, a leaf.
type Session struct {
	fe  *FrontEnd
	app *apps.App
	hc  *hub.Conn
	// reason is why the server is closing the connection, plus one.
	reason atomic.Uint32

	// jlMu guards joinLeave, the presence channels whose join and leave
	// pushes the client asked for; Deliver reads it.
	jlMu      sync.Mutex
	joinLeave map[string]struct{}

	mu        sync.Mutex
	closed    bool
	connected bool
	// spent: a connect was answered with an error (109, 110). The
	// connection gets no second try, as in Centrifugo, whose client is
	// then "unusable": whatever it sends next closes 3501.
	spent bool
	// verifying: a command's token is being checked off the loop (a
	// public-key signature); the command and those after it wait, and
	// what arrives meanwhile is held. verdict is the check's outcome,
	// for the command's handler.
	verifying bool
	verdict   *verdict
	// connecting: the connect reply waits for the cluster; rest are the
	// commands that came after the connect in its message, and held the
	// messages received meanwhile, all handled after it, in that order.
	connecting bool
	rest       []Command
	held       [][]byte
	heldBytes  int
	user       string
	info       json.RawMessage
	expires    time.Time // connection expiry; zero: never
	subs       map[string]*subscription
	subSeq     uint64
	timer      hub.ConnTimer     // the session's one timer (onTimer)
	rate       *ratelimit.Bucket // publishes; made by the first one
	joins      *ratelimit.Bucket // presence joins; made by the first one
	started    time.Time
	nextPing   time.Time
	pingSent   time.Time // zero: no ping waits for its pong
}

type subscription struct {
	ch       channel.Channel
	id       uint64
	pending  *hub.Pending // nil once confirmed
	expires  time.Time
	presence bool // joined the hub's presence as the connection's user
	// refused: its presence join failed after the subscribe was accepted;
	// the commands queued behind it that needed it are refused too.
	refused bool
	// joinLeave: the client asked for join and leave pushes.
	joinLeave bool
	// server: made by the connection token's channels (a server-side
	// subscription), not by a subscribe.
	server bool
	// byToken: made by a subscribe with a subscription token, the only
	// kind a sub_refresh refreshes.
	byToken bool
}

var (
	_ hub.Client             = (*Session)(nil)
	_ hub.User               = (*Session)(nil)
	_ hub.ServerUnsubscriber = (*Session)(nil)
	_ transport.Handler      = (*Session)(nil)
)

func newSession(fe *FrontEnd, app *apps.App, hc *hub.Conn) *Session {
	s := &Session{fe: fe, app: app, hc: hc}
	s.timer.Init((*sessionAlarm)(s))
	return s
}

// sessionAlarm is the Session as its timer's hub.Alarm, so that Session
// itself exports no Alarm method that others could call.
type sessionAlarm Session

func (a *sessionAlarm) Alarm() { (*Session)(a).onTimer() }

func (s *Session) conn() transport.Conn { return s.hc.Transport() }

// SocketID implements hub.Subscriber; it is also the Centrifugo client id.
func (s *Session) SocketID() string { return s.hc.SocketID() }

// Protocol implements hub.Client.
func (s *Session) Protocol() string { return Protocol }

// Deliver implements hub.Subscriber: encoded once per publication. Member
// announcements reach only the subscribers that asked for join and leave.
func (s *Session) Deliver(p *hub.Publication) {
	if (p.Kind == broker.KindMemberAdded || p.Kind == broker.KindMemberRemoved) && !s.wantsJoinLeave(p.Channel) {
		return
	}
	s.hc.Send(p.Payload(hub.EncodingCentrifugo, EncodePublication))
}

func (s *Session) wantsJoinLeave(ch string) bool {
	s.jlMu.Lock()
	defer s.jlMu.Unlock()
	_, ok := s.joinLeave[ch]
	return ok
}

// setJoinLeave records whether the client wants channel's join and leave
// pushes. It is set before the subscription reaches the hub and cleared
// after it left, so no push of another subscription is sent or lost.
func (s *Session) setJoinLeave(ch string, on bool) {
	s.jlMu.Lock()
	defer s.jlMu.Unlock()
	if !on {
		delete(s.joinLeave, ch)
		return
	}
	if s.joinLeave == nil {
		s.joinLeave = make(map[string]struct{})
	}
	s.joinLeave[ch] = struct{}{}
}

func (s *Session) send(b []byte) { s.hc.Send(b) }

// CloseWith implements hub.Client.
func (s *Session) CloseWith(reason hub.CloseReason) {
	s.reason.CompareAndSwap(0, uint32(reason)+1)
	code, msg := closeCode(reason)
	if reason == hub.ReasonSlowConsumer {
		s.conn().Abort(code, msg)
		return
	}
	s.conn().Close(code, msg)
}

// disconnect closes with a Centrifugo code of the front end's own (token
// and expiry codes the hub has no reason for), recording reason for the
// hub.
func (s *Session) disconnect(code int, msg string, reason hub.CloseReason) {
	s.reason.CompareAndSwap(0, uint32(reason)+1)
	s.conn().Close(code, msg)
}

func (s *Session) badRequest() {
	s.disconnect(CloseBadRequest, "bad request", hub.ReasonProtocolError)
}

// start arms the connect deadline.
func (s *Session) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = s.fe.clock.Now()
	s.fe.clock.Arm(&s.timer, s.fe.cfg.StaleDelay)
}

// HandleMessage implements transport.Handler: the message's commands are
// handled in order.
func (s *Session) HandleMessage(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.connecting || s.verifying {
		size := len(data) + heldOverhead
		if s.connecting && len(s.held) >= maxHeldMessages || s.verifying && s.heldBytes+size > maxHeldBytes {
			s.disconnect(CloseTooManyRequests, "too many requests", hub.ReasonProtocolError)
			return
		}
		// The transport may reuse data once this returns.
		s.held = append(s.held, append([]byte(nil), data...))
		s.heldBytes += size
		return
	}
	s.handleMessage(data)
}

// resume handles what waited while the session was paused (a connect
// waiting for the cluster, a token checked off the loop): cmds, then the
// messages held, until it pauses again.
func (s *Session) resume(cmds []Command) {
	s.handleCommands(cmds)
	for len(s.held) > 0 && !s.connecting && !s.verifying {
		data := s.held[0]
		s.held[0] = nil
		s.held = s.held[1:]
		s.heldBytes -= len(data) + heldOverhead
		s.handleMessage(data)
	}
	if len(s.held) == 0 {
		s.held = nil
	}
}

func (s *Session) handleMessage(data []byte) {
	if s.closed || s.reason.Load() != 0 {
		return
	}
	if !utf8.Valid(data) {
		s.badRequest()
		return
	}
	// centrifuge-js sends its connect (and, after a reconnect, its
	// resubscriptions) with a subscribe for every subscription it has,
	// in one message: a bound below what the app lets a connection
	// subscribe would close such a client 3501, which it takes as final.
	cmds, err := DecodeCommands(data, s.app.MaxSubscriptionsPerConnection+MaxCommandsPerFrame)
	if err != nil {
		s.badRequest()
		return
	}
	s.handleCommands(cmds)
}

func (s *Session) handleCommands(cmds []Command) {
	for i := range cmds {
		if s.closed || s.reason.Load() != 0 {
			return
		}
		if s.verdict == nil {
			if tok, conn := s.costlyToken(&cmds[i]); tok != "" {
				s.verifyOffLoop(tok, conn, cmds[i:])
				return
			}
		}
		s.handle(&cmds[i])
		s.verdict = nil
		if cmds[i].Connect != nil && !s.connected {
			// Answered with an error (an expired token): the rest of
			// the message, the subscribes batched with it, is dropped,
			// as Centrifugo does, rather than closed on as commands
			// before connect; the client reconnects.
			return
		}
		if s.connecting {
			// The connect reply waits for the cluster: the commands
			// batched with it wait too, or their replies would come
			// first.
			s.rest = cmds[i+1:]
			return
		}
	}
}

// verdict is the outcome of a token check made off the loop.
type verdict struct {
	token   string
	connect jwtauth.ConnectClaims
	sub     jwtauth.SubscribeClaims
	err     error
}

// costlyToken returns the token c's handler would check, when that check
// may verify a public-key signature (milliseconds for ES512, and a message
// may carry hundreds of commands), and whether it is a connection token.
// Such checks are made off the transport's loop, which serves many other
// connections. A command may carry several requests: the one read here is
// the one handle dispatches to, in handle's order, so that no token is
// verified on the loop.
func (s *Session) costlyToken(c *Command) (string, bool) {
	if c.Send != nil || c.ID == 0 || s.spent {
		return "", false // ignored, or closed 3501, without a check
	}
	var tok string
	var conn bool
	switch {
	case c.Connect != nil:
		if s.connected {
			return "", false // closed 3501 without a check
		}
		tok, conn = c.Connect.Token, true
	case !s.connected:
		return "", false // closed 3501 without a check
	case c.Subscribe != nil:
		tok = c.Subscribe.Token
	case c.Unsubscribe != nil, c.Publish != nil, c.Presence != nil, c.PresenceStats != nil:
		return "", false
	case c.Refresh != nil:
		tok, conn = c.Refresh.Token, true
	case c.SubRefresh != nil && c.SubRefresh.Channel != "":
		tok = c.SubRefresh.Token
	}
	if tok == "" || !s.app.JWT().Costly(tok) {
		return "", false
	}
	return tok, conn
}

// verifyOffLoop checks the token of cmds[0] off the loop, then handles
// cmds with the outcome, then what arrived meanwhile. One check at a time:
// the connection waits for it.
func (s *Session) verifyOffLoop(tok string, conn bool, cmds []Command) {
	s.verifying = true
	v := s.app.JWT()
	s.hc.Do(func(context.Context) {
		out := &verdict{token: tok}
		now := s.fe.clock.Now()
		if conn {
			out.connect, out.err = v.Connect(tok, now)
		} else {
			out.sub, out.err = v.Subscribe(tok, now)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.verifying = false
		if s.closed {
			return
		}
		s.verdict = out
		s.resume(cmds)
		s.verdict = nil // unused if the session stopped first; a check resume started sets its own
	})
}

// connectClaims checks a connection token, or takes the outcome of the
// check made off the loop.
func (s *Session) connectClaims(tok string, now time.Time) (jwtauth.ConnectClaims, error) {
	if v := s.verdict; v != nil && v.token == tok {
		s.verdict = nil
		return v.connect, v.err
	}
	return s.app.JWT().Connect(tok, now)
}

// subClaims is connectClaims for a subscription token.
func (s *Session) subClaims(tok string, now time.Time) (jwtauth.SubscribeClaims, error) {
	if v := s.verdict; v != nil && v.token == tok {
		s.verdict = nil
		return v.sub, v.err
	}
	return s.app.JWT().Subscribe(tok, now)
}

// handle dispatches c to one handler, chosen in this order when c carries
// several requests; costlyToken follows the same order.
func (s *Session) handle(c *Command) {
	if s.spent {
		// Centrifugo's HandleCommand closes an unusable client before it
		// looks at the command, so a pong closes too.
		s.badRequest()
		return
	}
	if c.IsPong() {
		// Liveness is the transport's LastRead.
		return
	}
	if !s.connected && c.Connect == nil {
		// Any command but connect first, an asynchronous message
		// included, closes 3501, as Centrifugo does.
		s.badRequest()
		return
	}
	if c.Send != nil {
		return // no handler for asynchronous messages: ignored
	}
	if c.ID == 0 {
		s.badRequest()
		return
	}
	switch {
	case c.Connect != nil:
		s.handleConnect(c.ID, c.Connect)
	case c.Subscribe != nil:
		s.handleSubscribe(c.ID, c.Subscribe)
	case c.Unsubscribe != nil:
		s.handleUnsubscribe(c.ID, c.Unsubscribe)
	case c.Publish != nil:
		s.handlePublish(c.ID, c.Publish)
	case c.Presence != nil:
		s.handlePresence(c.ID, c.Presence, false)
	case c.PresenceStats != nil:
		s.handlePresence(c.ID, c.PresenceStats, true)
	case c.Refresh != nil:
		s.handleRefresh(c.ID, c.Refresh)
	case c.SubRefresh != nil:
		s.handleSubRefresh(c.ID, c.SubRefresh)
	case c.History != nil, c.RPC != nil, c.Ping != nil:
		// No history, no RPC handler: what Centrifugo answers without them.
		s.send(errorReply(c.ID, ErrNotAvailable))
	default:
		s.badRequest()
	}
}

// HandleClose implements transport.Handler.
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
	for name, sub := range s.subs {
		s.leave(sub)
		delete(s.subs, name)
	}
	if s.connected && s.user != "" {
		s.fe.hub.SignOut(s.app.ID, s.user, s)
	}
	s.hc.Closed(reason)
	if reason != hub.ReasonClientClosed {
		s.fe.log.Debug("connection closed", "app_id", s.app.ID, "client", s.SocketID(), "reason", reason.String(), "err", err)
	}
}

func ttl(exp, now time.Time) expiring {
	if exp.IsZero() {
		return expiring{}
	}
	return expiring{Expires: true, TTL: max(1, int64(exp.Sub(now).Round(time.Second)/time.Second))}
}

func (s *Session) handleConnect(id uint32, req *ConnectRequest) {
	if s.connected {
		s.badRequest()
		return
	}
	if req.Token == "" {
		// Anonymous connections are not allowed: a token is required.
		s.badRequest()
		return
	}
	now := s.fe.clock.Now()
	claims, err := s.connectClaims(req.Token, now)
	switch {
	case errors.Is(err, jwtauth.ErrExpired):
		s.spent = true
		s.send(errorReply(id, ErrTokenExpired))
		return
	case err != nil:
		s.disconnect(CloseInvalidToken, "invalid token", hub.ReasonUnauthorized)
		return
	case expiredAt(claims.Expires, now):
		s.spent = true
		s.send(errorReply(id, ErrExpired))
		return
	}
	if claims.Sub != "" && !s.fe.hub.SignIn(s.app.ID, claims.Sub, s, userBudget(s.app)) {
		// Known to the hub as the user, so that the server API's
		// disconnect and unsubscribe by user reach this connection, on
		// whichever node it is, and Pusher watchlists see the user
		// online. The user's first connection on the node takes a token
		// of its sign-in budget: none left is Centrifugo's answer to a
		// rate limit, temporary, so centrifuge-js connects again after a
		// backoff; meanwhile the connection is unusable, as after 109.
		s.spent = true
		s.send(errorReply(id, ErrTooManyRequests))
		return
	}
	s.connected = true
	s.user, s.info, s.expires = claims.Sub, claims.Info, claims.Expires
	// Server-side subscriptions: public and $ channels of the token's
	// list, within the connection's allowance. They are subscribed after
	// the reply is queued, so no publication precedes it.
	res := connectResult{
		Client: s.SocketID(), Version: s.fe.cfg.Version, expiring: ttl(s.expires, now),
		Ping: int(s.fe.cfg.PingInterval / time.Second), Pong: true,
	}
	server := s.serverChannels(claims.Channels)
	for _, ch := range server {
		if res.Subs == nil {
			res.Subs = map[string]json.RawMessage{}
		}
		res.Subs[ch.Name] = emptyObject
	}
	s.nextPing = now.Add(s.fe.cfg.PingInterval)
	connectReply := reply(id, "connect", mustJSON(res))
	ready := true
	for _, ch := range server {
		ready = ready && s.fe.hub.InterestReady(s.app.ID, ch.Name)
	}
	if ready {
		s.send(connectReply)
		for _, ch := range server {
			s.subSeq++
			s.addSub(&subscription{ch: ch, id: s.subSeq, server: true})
			s.fe.hub.Subscribe(s.app.ID, ch.Name, s)
		}
		s.arm(now)
		return
	}
	// A node of a cluster that does not receive every channel yet: the
	// reply, which tells the client it is subscribed, waits until the
	// channels' messages flow to this node, and what they publish
	// meanwhile is held. Commands that follow the connect wait too.
	subs := make([]*subscription, len(server))
	for i, ch := range server {
		s.subSeq++
		subs[i] = &subscription{ch: ch, id: s.subSeq, server: true}
		subs[i].pending, _ = s.fe.hub.SubscribePending(s.app.ID, ch.Name, s)
		s.addSub(subs[i])
	}
	s.connecting = true
	s.hc.Do(func(ctx context.Context) {
		for _, ch := range server {
			if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, ch.Name); err != nil {
				s.logError("channel subscription on the cluster failed", ch.Name, err)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		s.connecting = false
		s.send(connectReply)
		for _, sub := range subs {
			s.activate(sub, func() {})
		}
		now := s.fe.clock.Now()
		s.arm(now)
		rest := s.rest
		s.rest = nil
		s.resume(rest)
	})
}

// serverChannels are the server-side subscriptions a connection token's
// channel list makes: its public and $ channels with valid names, each
// once, at most the app's subscription limit of them; the others are
// skipped.
func (s *Session) serverChannels(names []string) []channel.Channel {
	var out []channel.Channel
	seen := map[string]bool{}
	for _, name := range names {
		ch, _, err := channel.ParseToken(name, s.app.MaxChannelNameLength)
		if err != nil || ch.Kind != channel.Public || seen[ch.Name] || len(out) >= s.app.MaxSubscriptionsPerConnection {
			continue
		}
		seen[ch.Name] = true
		out = append(out, ch)
	}
	return out
}

// serverChannelsChanged reports whether a refreshed connection token's
// channel list differs from the server-side subscriptions the connection
// has: it lists a channel the connection is not in, or no longer lists
// one the connection was subscribed to by its token.
func (s *Session) serverChannelsChanged(names []string) bool {
	want := s.serverChannels(names)
	listed := make(map[string]bool, len(want))
	for _, ch := range want {
		if _, ok := s.subs[ch.Name]; !ok {
			return true
		}
		listed[ch.Name] = true
	}
	for name, sub := range s.subs {
		if sub.server && !listed[name] {
			return true
		}
	}
	return false
}

// maxHeldMessages bounds the messages a connection may send while its
// connect waits for the cluster; centrifuge-js sends its subscriptions
// with the connect, in the same message. maxHeldBytes bounds what is held
// while a token is checked off the loop: a short wait, but centrifuge-js
// may meanwhile send many small messages, a subscribe for each token it
// fetched. Each held message counts heldOverhead bytes more, what holding
// it costs beyond its bytes (its slice header, the rounding of its copy):
// a client sending empty messages, a few bytes of framing each, must not
// be held without bound either.
const (
	maxHeldMessages = 16
	maxHeldBytes    = 1 << 20
	heldOverhead    = 64
)

func (s *Session) addSub(sub *subscription) {
	if s.subs == nil {
		s.subs = make(map[string]*subscription)
	}
	s.subs[sub.ch.Name] = sub
}

func (s *Session) handleSubscribe(id uint32, req *SubscribeRequest) {
	if req.Channel == "" {
		// A malformed command, which Centrifugo closes 3501; a name
		// that is given but wrong is answered 107 below.
		s.badRequest()
		return
	}
	ch, needsToken, err := channel.ParseToken(req.Channel, s.app.MaxChannelNameLength)
	if err != nil {
		s.send(errorReply(id, ErrBadRequest))
		s.fe.hub.SubscriptionRefused(s.app.ID, hub.RefusedInvalid)
		return
	}
	if ch.Kind == channel.Encrypted || ch.Kind == channel.ServerToUser {
		// End-to-end encrypted channels need Pusher's shared-secret
		// scheme; a user's own channel is Pusher sign-in's.
		s.refuse(id, ErrPermissionDenied, hub.RefusedAuth)
		return
	}
	if _, ok := s.subs[ch.Name]; ok {
		s.send(errorReply(id, ErrAlreadySub))
		return
	}
	if len(s.subs) >= s.app.MaxSubscriptionsPerConnection {
		s.refuse(id, ErrLimitExceeded, hub.RefusedLimit)
		return
	}
	now := s.fe.clock.Now()
	var exp time.Time
	var chanInfo json.RawMessage
	switch {
	case req.Token != "":
		claims, ok := s.verifySub(id, ch.Name, req.Token, now)
		if !ok {
			return
		}
		exp, chanInfo = claims.Expires, claims.Info
	case needsToken:
		s.refuse(id, ErrPermissionDenied, hub.RefusedAuth)
		return
	}
	result := mustJSON(ttl(exp, now))
	s.subSeq++
	sub := &subscription{ch: ch, id: s.subSeq, expires: exp, byToken: req.Token != ""}
	if ch.Kind == channel.Presence {
		sub.joinLeave = req.JoinLeave
		s.subscribePresence(id, sub, chanInfo, result)
		return
	}
	s.addSub(sub)
	sub.pending, _ = s.fe.hub.SubscribeReady(s.app.ID, ch.Name, s, func() { s.send(reply(id, "subscribe", result)) })
	if sub.pending == nil {
		s.arm(now)
		return
	}
	// The first subscriber on a node of a cluster: the reply waits until
	// the channel's messages flow to this node.
	ok := s.hc.TryDo(func(ctx context.Context) {
		if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, ch.Name); err != nil {
			s.logError("channel subscription on the cluster failed", ch.Name, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.left(sub) {
			s.send(reply(id, "subscribe", result))
			return
		}
		s.activate(sub, func() { s.send(reply(id, "subscribe", result)) })
	})
	if !ok {
		s.dropPending(id, sub)
		return
	}
	s.arm(now)
}

// verifySub checks a subscription token for channel name, answering the
// client itself when it fails: expired 109, not a valid subscription
// token 103, a token for another channel, user or client closes 3500.
func (s *Session) verifySub(id uint32, name, token string, now time.Time) (jwtauth.SubscribeClaims, bool) {
	claims, err := s.subClaims(token, now)
	switch {
	case errors.Is(err, jwtauth.ErrExpired):
		s.refuse(id, ErrTokenExpired, hub.RefusedAuth)
		return claims, false
	case err != nil, claims.Channel == "":
		s.refuse(id, ErrPermissionDenied, hub.RefusedAuth)
		return claims, false
	case claims.Channel != name, claims.Sub != s.user, claims.Client != "" && claims.Client != s.SocketID():
		s.fe.hub.SubscriptionRefused(s.app.ID, hub.RefusedAuth)
		s.disconnect(CloseInvalidToken, "invalid token", hub.ReasonUnauthorized)
		return claims, false
	case expiredAt(claims.Expires, now):
		s.refuse(id, ErrExpired, hub.RefusedAuth)
		return claims, false
	}
	return claims, true
}

// expiredAt reports whether a token's expire_at (its Expires, when that is
// not its exp) has already passed: the token is valid, but what it would
// grant is expired from the start, which Centrifugo answers with 110.
func expiredAt(exp, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp)
}

func (s *Session) refuse(id uint32, code int, why hub.Refusal) {
	s.fe.hub.SubscriptionRefused(s.app.ID, why)
	s.send(errorReply(id, code))
}

// dropPending undoes a pending subscription whose work could not be
// queued: the connection has too much in flight.
func (s *Session) dropPending(id uint32, sub *subscription) {
	delete(s.subs, sub.ch.Name)
	s.fe.hub.Unsubscribe(s.app.ID, sub.ch.Name, sub.pending)
	s.setJoinLeave(sub.ch.Name, false)
	s.refuse(id, ErrTooManyRequests, hub.RefusedLimit)
}

func (s *Session) subscribePresence(id uint32, sub *subscription, chanInfo json.RawMessage, result []byte) {
	switch {
	case s.user == "":
		// Presence is by user: an anonymous connection cannot be a member.
		s.refuse(id, ErrPermissionDenied, hub.RefusedAuth)
		return
	case channel.UserIDTooLong(s.user):
		// The bound of Pusher presence, whose members share the list.
		s.refuse(id, ErrLimitExceeded, hub.RefusedLimit)
		return
	}
	info := chanInfo
	if len(info) == 0 {
		info = s.info
	}
	if len(info) > s.app.MaxPresenceUserInfoBytes {
		s.refuse(id, ErrLimitExceeded, hub.RefusedLimit)
		return
	}
	if !s.takeJoin() || !s.fe.hub.TakeJoin(s.app.ID, s.user, userBudget(s.app)) {
		// Temporary: centrifuge-js subscribes again after a backoff.
		s.refuse(id, ErrTooManyRequests, hub.RefusedLimit)
		return
	}
	name := sub.ch.Name
	if sub.joinLeave {
		s.setJoinLeave(name, true)
	}
	sub.pending, _ = s.fe.hub.SubscribePending(s.app.ID, name, s)
	s.addSub(sub)
	bm := broker.Member{UserID: s.user, Info: info}
	maxMembers := s.app.MaxPresenceMembers
	ok := s.hc.TryDo(func(ctx context.Context) {
		if err := s.fe.hub.AwaitInterest(ctx, s.app.ID, name); err != nil {
			s.logError("channel subscription on the cluster failed", name, err)
		}
		first, _, err := s.fe.hub.JoinPresence(ctx, s.hc, name, bm, maxMembers)
		s.mu.Lock()
		if err != nil {
			sub.refused = true
			answer := s.left(sub) // answered even when left meanwhile
			if s.current(sub) {
				answer = true
				delete(s.subs, name)
				s.fe.hub.Unsubscribe(s.app.ID, name, sub.pending)
				s.setJoinLeave(name, false)
			}
			if answer {
				if errors.Is(err, broker.ErrMemberLimit) {
					s.refuse(id, ErrLimitExceeded, hub.RefusedLimit)
				} else {
					s.logError("presence join failed", name, err)
					s.refuse(id, ErrInternal, hub.RefusedUnavailable)
				}
			}
			s.mu.Unlock()
			return
		}
		sub.presence = true
		if s.left(sub) {
			// Joined, and its leave is queued behind this.
			s.send(reply(id, "subscribe", result))
			s.mu.Unlock()
			return
		}
		s.activate(sub, func() {
			s.send(reply(id, "subscribe", result))
			if sub.joinLeave {
				// Centrifugo tells the joiner of its own join too.
				s.send(joinLeave(name, "join", bm.UserID, bm.Info))
			}
		})
		s.mu.Unlock()
		if first {
			if err := s.fe.hub.AnnounceJoin(ctx, s.hc, name, bm); err != nil {
				s.logError("presence announcement failed", name, err)
			}
		}
	})
	if !ok {
		s.dropPending(id, sub)
		return
	}
	s.arm(s.fe.clock.Now())
}

// current reports whether sub is still the connection's subscription to
// its channel, for the results of off-loop work.
func (s *Session) current(sub *subscription) bool {
	return !s.closed && s.subs[sub.ch.Name] == sub
}

// left reports whether the client unsubscribed from sub while its
// subscribe was under way. The subscribe is still answered: every command
// gets its reply, as in Centrifugo, which answers a subscribe before it
// reads the unsubscribe behind it. A reply that never came would leave the
// client's call waiting for its timeout, and centrifuge-js takes a
// subscribe timeout for a broken connection and reconnects.
func (s *Session) left(sub *subscription) bool {
	return !s.closed && s.reason.Load() == 0 && s.subs[sub.ch.Name] != sub
}

func (s *Session) activate(sub *subscription, confirm func()) {
	if !s.current(sub) || sub.pending == nil {
		return
	}
	if sub.pending.Activate(confirm) {
		sub.pending = nil
	}
}

// leave undoes a subscription; a presence membership is left off the loop,
// after its join.
func (s *Session) leave(sub *subscription) {
	name := sub.ch.Name
	if sub.pending != nil {
		s.fe.hub.Unsubscribe(s.app.ID, name, sub.pending)
	} else {
		s.fe.hub.Unsubscribe(s.app.ID, name, s)
	}
	if sub.ch.Kind != channel.Presence {
		return
	}
	if sub.joinLeave {
		s.setJoinLeave(name, false)
	}
	// A join still queued sets presence when it runs; the leave is queued
	// after it and reads the flag then.
	hc, userID := s.hc, s.user
	hc.Do(func(ctx context.Context) {
		s.mu.Lock()
		joined := sub.presence
		s.mu.Unlock()
		if !joined {
			return
		}
		if err := s.fe.hub.LeavePresence(ctx, hc, name, userID); err != nil {
			s.logError("presence leave failed", name, err)
		}
	})
}

// WatchlistChange implements hub.User: Centrifugo has no watchlists.
func (s *Session) WatchlistChange(string, bool) {}

// ServerUnsubscribe implements hub.ServerUnsubscriber: the server API
// unsubscribed the connection's user from channel. The hub calls it from
// the broker's handler, so the work is queued for the connection. It is a
// revocation and is never dropped, not even when the client keeps its own
// work at the bound (which it could do on purpose to keep the channel):
// past the bound it is queued anyway, one per call of the operator's API.
func (s *Session) ServerUnsubscribe(name string) {
	fn := func(context.Context) {
		s.mu.Lock()
		defer s.mu.Unlock()
		sub, ok := s.subs[name]
		if s.closed || !ok {
			return
		}
		delete(s.subs, name)
		s.leave(sub)
		s.send(unsubscribePush(name, UnsubServer, "server unsubscribe"))
	}
	if !s.hc.TryDo(fn) {
		s.hc.Do(fn)
	}
}

func (s *Session) handleUnsubscribe(id uint32, req *ChannelRequest) {
	if req.Channel == "" {
		s.badRequest() // as Centrifugo
		return
	}
	if sub, ok := s.subs[req.Channel]; ok {
		delete(s.subs, req.Channel)
		s.leave(sub)
	}
	s.send(reply(id, "unsubscribe", emptyObject))
}

// PublicationEvent is the Pusher event name of a Centrifugo client's
// publication.
const PublicationEvent = "publication"

func (s *Session) handlePublish(id uint32, req *PublishRequest) {
	sub, subscribed := s.subs[req.Channel]
	switch {
	case !s.app.ClientPublish, !subscribed:
		s.send(errorReply(id, ErrPermissionDenied))
		return
	case len(req.Data) == 0:
		s.send(errorReply(id, ErrBadRequest))
		return
	case len(req.Data) > s.app.MaxEventBytes:
		s.send(errorReply(id, ErrLimitExceeded))
		return
	case !s.takeToken():
		// The app's client_event_rate bounds what one connection
		// publishes, on both protocols.
		s.send(errorReply(id, ErrTooManyRequests))
		return
	}
	m := broker.Message{
		AppID: s.app.ID, Channel: req.Channel, Event: PublicationEvent,
		Data: string(req.Data), DataJSON: true, UserID: s.user,
	}
	ok := s.hc.TryDo(func(ctx context.Context) {
		if !s.confirmed(sub, id) {
			return
		}
		err := s.fe.hub.Publish(ctx, m, hub.SourceClient)
		if err != nil {
			s.logError("publish failed", m.Channel, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		if err != nil {
			s.send(errorReply(id, ErrInternal))
		} else {
			s.send(reply(id, "publish", emptyObject))
		}
	})
	if !ok {
		s.send(errorReply(id, ErrTooManyRequests))
	}
}

// confirmed reports, from work queued by a command that needs sub (a
// publish, a presence query), whether sub was confirmed. The command was
// accepted while sub may still have been waiting for its presence join,
// queued before it, which has run by now: when the join was refused (a
// full channel, a broker failure) the client never was in the channel,
// and the command is answered 103, as for a channel it is not in. A
// subscription the client left after sending the command still counts:
// the command came first.
func (s *Session) confirmed(sub *subscription, id uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if sub.refused {
		s.send(errorReply(id, ErrPermissionDenied))
		return false
	}
	return true
}

// takeToken spends one of the connection's publish tokens.
func (s *Session) takeToken() bool {
	now := s.fe.clock.Now()
	if s.rate == nil {
		b := ratelimit.New(s.app.ClientEventRate, now)
		s.rate = &b
	}
	return s.rate.Take(now)
}

// takeJoin spends one of the connection's presence-join tokens (see
// apps.App.PresenceJoinRate): every join and the leave it allows are
// announced to the channel's members, Pusher clients among them. The user
// has a budget of its own on the node (hub.TakeJoin), shared with its
// Pusher connections and taken after this one, since a token without a
// client claim lets a user join from a fresh connection every round.
func (s *Session) takeJoin() bool {
	now := s.fe.clock.Now()
	if s.joins == nil {
		b := ratelimit.NewBurst(s.app.PresenceJoinRate, s.app.PresenceJoinBurst(), now)
		s.joins = &b
	}
	return s.joins.Take(now)
}

// userBudget is what one user may do on the node per second, joins and
// sign-ins each: presence_join_rate, in its bursts.
func userBudget(a *apps.App) hub.Budget {
	return hub.Budget{Rate: a.PresenceJoinRate, Burst: a.PresenceJoinBurst()}
}

// handlePresence answers presence and presence_stats for a presence-
// channel the connection is subscribed to. Presence is by user: one entry
// per member, keyed by user id.
func (s *Session) handlePresence(id uint32, req *ChannelRequest, stats bool) {
	sub, ok := s.subs[req.Channel]
	switch {
	case !ok:
		s.send(errorReply(id, ErrPermissionDenied))
		return
	case sub.ch.Kind != channel.Presence:
		s.send(errorReply(id, ErrNotAvailable))
		return
	}
	name := sub.ch.Name
	ok = s.hc.TryDo(func(ctx context.Context) {
		if !s.confirmed(sub, id) {
			return
		}
		var b []byte
		var err error
		if stats {
			var users, clients int
			if users, err = s.fe.hub.MemberCount(ctx, s.app.ID, name); err == nil {
				clients, err = s.fe.hub.ClusterSubscriptionCount(ctx, s.app.ID, name)
			}
			b = reply(id, "presence_stats", presenceStatsResult(max(clients, users), users))
		} else {
			var members []broker.Member
			members, err = s.fe.hub.Members(ctx, s.app.ID, name)
			b = reply(id, "presence", presenceResult(members))
		}
		if err != nil {
			s.logError("presence query failed", name, err)
			b = errorReply(id, ErrInternal)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			s.send(b)
		}
	})
	if !ok {
		s.send(errorReply(id, ErrTooManyRequests))
	}
}

func (s *Session) handleRefresh(id uint32, req *RefreshRequest) {
	if req.Token == "" {
		// A refresh without a token is malformed: 3501, as Centrifugo,
		// not the 3500 of a token that fails its checks.
		s.badRequest()
		return
	}
	now := s.fe.clock.Now()
	claims, err := s.connectClaims(req.Token, now)
	switch {
	case errors.Is(err, jwtauth.ErrExpired):
		s.disconnect(CloseExpired, "connection expired", hub.ReasonUnauthorized)
		return
	case err != nil, claims.Sub != s.user:
		s.disconnect(CloseInvalidToken, "invalid token", hub.ReasonUnauthorized)
		return
	case expiredAt(claims.Expires, now):
		s.send(errorReply(id, ErrExpired))
		return
	case s.serverChannelsChanged(claims.Channels):
		// The token's channels are what the backend grants now: keeping
		// a server-side subscription the new token no longer lists would
		// outlive its revocation for as long as the client refreshes.
		// Centrifugo closes 3010, after which the client reconnects and
		// the token's channels are subscribed afresh.
		s.disconnect(CloseInsufficientState, "insufficient state", hub.ReasonUnauthorized)
		return
	}
	s.expires = claims.Expires
	s.info = claims.Info
	s.send(reply(id, "refresh", mustJSON(refreshResult{Client: s.SocketID(), Version: s.fe.cfg.Version, expiring: ttl(s.expires, now)})))
	s.arm(now)
}

func (s *Session) handleSubRefresh(id uint32, req *SubRefreshRequest) {
	if req.Channel == "" {
		s.badRequest()
		return
	}
	sub, ok := s.subs[req.Channel]
	if !ok {
		s.send(errorReply(id, ErrPermissionDenied))
		return
	}
	if !sub.byToken {
		// Nothing to refresh: a subscription made without a token (or
		// by the connection token) never expires by a subscription
		// token's exp. Centrifugo closes 3501 for it.
		s.badRequest()
		return
	}
	if req.Token == "" {
		s.send(errorReply(id, ErrBadRequest)) // 107, as Centrifugo
		return
	}
	now := s.fe.clock.Now()
	claims, err := s.subClaims(req.Token, now)
	switch {
	case errors.Is(err, jwtauth.ErrExpired):
		// Refused, unlike Centrifugo v6.9.1, which accepted it and let the
		// subscription never expire.
		s.disconnect(CloseSubExpired, "subscription expired", hub.ReasonUnauthorized)
		return
	case err != nil, claims.Channel != sub.ch.Name, claims.Sub != s.user, claims.Client != "" && claims.Client != s.SocketID():
		s.disconnect(CloseInvalidToken, "invalid token", hub.ReasonUnauthorized)
		return
	case expiredAt(claims.Expires, now):
		s.send(errorReply(id, ErrExpired))
		return
	}
	sub.expires = claims.Expires
	s.send(reply(id, "sub_refresh", mustJSON(ttl(sub.expires, now))))
	s.arm(now)
}

// onTimer is the session's one timer: the connect deadline, then pings,
// the pong deadline, and the expiry of the connection and of each
// subscription (after the grace the client has to refresh).
func (s *Session) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.reason.Load() != 0 || s.connecting {
		return // a connect waiting for the cluster arms the timer when done
	}
	now := s.fe.clock.Now()
	cfg := &s.fe.cfg
	if !s.connected {
		if !now.Before(s.started.Add(cfg.StaleDelay)) {
			s.CloseWith(hub.ReasonSigninTimeout)
			return
		}
		s.fe.clock.Arm(&s.timer, s.started.Add(cfg.StaleDelay).Sub(now))
		return
	}
	if !s.pingSent.IsZero() && s.conn().LastRead().After(s.pingSent) {
		s.pingSent = time.Time{}
	}
	if !s.pingSent.IsZero() && !now.Before(s.pingSent.Add(cfg.PongTimeout)) {
		s.CloseWith(hub.ReasonPongTimeout)
		return
	}
	if !s.expires.IsZero() && !now.Before(s.expires.Add(cfg.ExpiredDelay)) {
		s.disconnect(CloseExpired, "connection expired", hub.ReasonUnauthorized)
		return
	}
	for name, sub := range s.subs {
		if !sub.expires.IsZero() && !now.Before(sub.expires.Add(cfg.ExpiredDelay)) {
			delete(s.subs, name)
			s.leave(sub)
			s.send(unsubscribePush(name, UnsubExpired, "subscription expired"))
		}
	}
	if !now.Before(s.nextPing) {
		s.send(emptyObject)
		if s.pingSent.IsZero() {
			s.pingSent = now
		}
		s.nextPing = now.Add(cfg.PingInterval)
	}
	s.arm(now)
}

// arm sets the timer for the earliest thing due.
func (s *Session) arm(now time.Time) {
	if s.closed || !s.connected {
		return
	}
	cfg := &s.fe.cfg
	next := s.nextPing
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	if !s.pingSent.IsZero() {
		earlier(s.pingSent.Add(cfg.PongTimeout))
	}
	if !s.expires.IsZero() {
		earlier(s.expires.Add(cfg.ExpiredDelay))
	}
	for _, sub := range s.subs {
		if !sub.expires.IsZero() {
			earlier(sub.expires.Add(cfg.ExpiredDelay))
		}
	}
	s.fe.clock.Arm(&s.timer, max(0, next.Sub(now)))
}

func (s *Session) logError(msg, channel string, err error) {
	s.fe.log.Error(msg, "app_id", s.app.ID, "client", s.SocketID(), "channel", channel, "err", err)
}
