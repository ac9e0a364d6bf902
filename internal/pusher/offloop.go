package pusher

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/jwtauth"
)

// A subscription JWT signed with a public key (RS256, ES256, ...) takes a
// signature check of tens of microseconds, about 2 ms for ES512: too long
// for the transport's loop, which serves many other connections, when a
// client may send such subscribes (forged ones included) one after the
// other. Its check is made in the connection's off-loop work; the
// subscribe waits for it, and the messages that arrive meanwhile are held,
// at most maxHeldBytes, and handled after it, in order. HMAC auth, JWT or
// key:signature, is checked at once, as before.

// maxHeldBytes bounds what a connection may send while one of its
// subscription JWTs is checked off the loop: a short wait, but pusher-js
// sends a subscribe for every channel at once on connecting.
const maxHeldBytes = 1 << 20

// heldOverhead is what holding a message costs beyond its bytes (its slice
// header, the rounding of its copy), counted against maxHeldBytes with
// them: a client sending empty messages, which cost the sender a few bytes
// of framing each, must not be held without bound.
const heldOverhead = 64

// MsgHeldTooMuch is the close reason of a client that sends more than
// maxHeldBytes while a subscription of its is being authorized.
const MsgHeldTooMuch = "Too much sent while a subscription was authorized"

// jwtVerdict is the outcome of a subscription JWT's check made off the loop.
type jwtVerdict struct {
	token  string
	claims jwtauth.SubscribeClaims
	err    error
}

// checkOffLoop reports whether the subscribe d to ch, whose auth is a JWT,
// has been taken over: its check may verify a public-key signature, so it
// is queued off the loop, and d is handled again, under mu, with the
// outcome (see subClaims). When the connection has too much in flight the
// subscribe is refused, as queueSubscription refuses. s.mu is held.
func (s *Session) checkOffLoop(ch channel.Channel, d SubscribeData) bool {
	if r := s.rare; r != nil && r.verdict != nil && r.verdict.token == d.Auth {
		return false
	}
	v := s.app.JWT()
	if !v.Costly(d.Auth) {
		return false
	}
	r := s.more()
	// Already holding when d is itself a held message (see resumeHeld).
	resuming := r.holding.Load()
	r.checking = true
	r.holding.Store(true)
	ok := s.hc.TryDo(func(context.Context) {
		out := &jwtVerdict{token: d.Auth}
		out.claims, out.err = v.Subscribe(d.Auth, s.fe.clock.Now())
		s.mu.Lock()
		r.checking = false
		if !s.closed && s.reason.Load() == 0 {
			r.verdict = out
			s.handleSubscribe(d)
			r.verdict = nil // unused if the subscribe was settled without it
		}
		s.mu.Unlock()
		s.resumeHeld()
	})
	if !ok {
		r.checking = false
		r.holding.Store(resuming)
		s.refuse(ch.Name, errTypeLimit, fmt.Sprintf("Too many requests in progress: at most %d per connection", hub.MaxPendingOps), 429, 0, hub.RefusedLimit)
	}
	return true
}

// subClaims checks a subscription JWT, or takes the outcome of the check
// made off the loop. s.mu is held.
func (s *Session) subClaims(token string, now time.Time) (jwtauth.SubscribeClaims, error) {
	if r := s.rare; r != nil && r.verdict != nil && r.verdict.token == token {
		v := r.verdict
		r.verdict = nil
		return v.claims, v.err
	}
	return s.app.JWT().Subscribe(token, now)
}

// hold keeps data, a message that arrived while a subscription JWT is
// checked off the loop, for resumeHeld; false when the check is over and
// what it held handled, so that data is handled now. A connection that
// sends more than maxHeldBytes meanwhile is closed, 4100 (pusher-js backs
// off and reconnects).
func (s *Session) hold(data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rare
	switch {
	case s.closed || s.reason.Load() != 0:
		return true
	case !r.holding.Load():
		return false
	case r.heldBytes+len(data)+heldOverhead > maxHeldBytes:
		r.held, r.heldBytes = nil, 0
		s.reason.CompareAndSwap(0, uint32(hub.ReasonProtocolError)+1)
		s.conn().Send(errorFrame(CodeOverCapacity, MsgHeldTooMuch, ""))
		s.conn().Close(int(CodeOverCapacity), MsgHeldTooMuch)
		return true
	}
	// The transport may reuse data once this returns.
	r.held = append(r.held, append([]byte(nil), data...))
	r.heldBytes += len(data) + heldOverhead
	return true
}

// resumeHeld handles, in order, the messages held while a subscription JWT
// was checked, until none is left (the loop then handles the next itself)
// or one of them has its own JWT checked off the loop, which resumes
// after it. It runs off the loop, in the connection's work, while the loop
// only holds: one message is handled at a time.
func (s *Session) resumeHeld() {
	for {
		s.mu.Lock()
		r := s.rare
		if s.closed || s.reason.Load() != 0 || r.checking {
			s.mu.Unlock()
			return
		}
		if len(r.held) == 0 {
			r.held = nil
			r.holding.Store(false)
			s.mu.Unlock()
			return
		}
		data := r.held[0]
		r.held[0] = nil
		r.held = r.held[1:]
		r.heldBytes -= len(data) + heldOverhead
		s.mu.Unlock()
		s.handleMessage(data)
	}
}
