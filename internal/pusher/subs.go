package pusher

import (
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/hub"
)

// subscriptions is the set of channels one connection is subscribed to.
//
// Most connections hold a handful of channels, and an idle connection's
// memory is mostly fixed per-connection state, so the set is a slice
// searched linearly: one small allocation instead of a map's buckets. Past
// indexThreshold channels a map index is added, so that a connection with
// thousands of channels does not make each subscribe linear.
type subscriptions struct {
	list  []subscription
	index map[string]int // position in list; nil until list is long
}

type subscription struct {
	ch channel.Channel
	// id tells this subscription from an earlier or later one to the same
	// channel, for results of off-loop work.
	id uint64
	// pending holds the channel's events until the subscription is
	// confirmed; nil once it is (or for one confirmed at once).
	pending *hub.Pending
	// grant is what a presence or JWT authorization carried; nil for the
	// other subscriptions, most of them, which keeps the entry 48 bytes.
	grant *subGrant
}

// subGrant is the part of a subscription only some have.
type subGrant struct {
	userID string // presence member id of this connection
	// expires is when the JWT that authorized it expires, in unix
	// nanoseconds; 0: never, or not authorized by a JWT.
	expires int64
	// s is set for a presence subscription, whose grant is its subscriber
	// in the hub (see Deliver).
	s *Session
}

var _ hub.Client = (*subGrant)(nil)

// SocketID implements hub.Subscriber.
func (g *subGrant) SocketID() string { return g.s.SocketID() }

// Deliver implements hub.Subscriber for a presence subscription: the
// channel's events, except the announcements about the connection's own
// member. While the connection is a member its user is in the channel, so
// an announcement about that user is stale or redundant: a removal
// published by the user's previous last connection (another tab, or this
// connection's own earlier subscription, left while this join was under
// way), or the addition announced by the user's first connection after
// this one's member list already had the user. Passed on, the removal
// would take the member out of its own list (pusher-js deletes it, and
// Laravel Echo reports it leaving), the addition report it joining.
func (g *subGrant) Deliver(p *hub.Publication) {
	if (p.Kind == broker.KindMemberAdded || p.Kind == broker.KindMemberRemoved) && p.UserID == g.userID {
		return
	}
	g.s.Deliver(p)
}

// CloseWith implements hub.Client: a pending presence subscription that
// held too much closes the connection as a slow consumer.
func (g *subGrant) CloseWith(reason hub.CloseReason) { g.s.CloseWith(reason) }

// Protocol implements hub.Client.
func (g *subGrant) Protocol() string { return Protocol }

// userID is the connection's presence member id on this channel, or "".
func (s *subscription) userID() string {
	if s.grant == nil {
		return ""
	}
	return s.grant.userID
}

// subscriber is what stands for the subscription in the hub's channel: its
// holder while pending, else its grant for a presence channel, else the
// session.
func (s *subscription) subscriber(sess *Session) hub.Subscriber {
	switch {
	case s.pending != nil:
		return s.pending
	case s.grant != nil && s.grant.s != nil:
		return s.grant
	}
	return sess
}

// expires is when the subscription's JWT expires, in unix nanoseconds; 0:
// never.
func (s *subscription) expires() int64 {
	if s.grant == nil {
		return 0
	}
	return s.grant.expires
}

const indexThreshold = 16

func (s *subscriptions) pos(name string) int {
	if s.index != nil {
		if i, ok := s.index[name]; ok {
			return i
		}
		return -1
	}
	for i := range s.list {
		if s.list[i].ch.Name == name {
			return i
		}
	}
	return -1
}

// get returns the subscription to channel name.
func (s *subscriptions) get(name string) (subscription, bool) {
	if i := s.pos(name); i >= 0 {
		return s.list[i], true
	}
	return subscription{}, false
}

// add records sub; the caller has checked it is not there yet.
func (s *subscriptions) add(sub subscription) {
	s.list = append(s.list, sub)
	switch {
	case s.index != nil:
		s.index[sub.ch.Name] = len(s.list) - 1
	case len(s.list) > indexThreshold:
		s.index = make(map[string]int, len(s.list))
		for i := range s.list {
			s.index[s.list[i].ch.Name] = i
		}
	}
}

// setActive records that the subscription to name is confirmed.
func (s *subscriptions) setActive(name string) {
	if i := s.pos(name); i >= 0 {
		s.list[i].pending = nil
	}
}

// remove deletes the subscription to channel name and returns it.
func (s *subscriptions) remove(name string) (subscription, bool) {
	i := s.pos(name)
	if i < 0 {
		return subscription{}, false
	}
	sub := s.list[i]
	last := len(s.list) - 1
	s.list[i] = s.list[last]
	s.list[last] = subscription{}
	s.list = s.list[:last]
	if s.index != nil {
		delete(s.index, name)
		if i < last {
			s.index[s.list[i].ch.Name] = i
		}
	}
	return sub, true
}

// all returns the subscriptions, for iteration; the set must not change
// while the result is in use.
func (s *subscriptions) all() []subscription { return s.list }
