package testkit

import (
	"sync"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
)

// Subscriber is a hub.Subscriber that records the messages it is given.
type Subscriber struct {
	ID string

	mu  sync.Mutex
	got []broker.Message
}

var _ hub.Subscriber = (*Subscriber)(nil)

// SocketID implements hub.Subscriber.
func (s *Subscriber) SocketID() string { return s.ID }

// Deliver implements hub.Subscriber.
func (s *Subscriber) Deliver(p *hub.Publication) {
	s.mu.Lock()
	s.got = append(s.got, p.Message)
	s.mu.Unlock()
}

// Messages returns a copy of what was delivered, in order.
func (s *Subscriber) Messages() []broker.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]broker.Message(nil), s.got...)
}

// User is a hub.User that records how it was closed and the watchlist
// changes it heard.
type User struct {
	mu      sync.Mutex
	reasons []hub.CloseReason
	changes []WatchlistChange
}

// WatchlistChange is one change a User heard.
type WatchlistChange struct {
	UserID string
	Online bool
}

var _ hub.User = (*User)(nil)

// CloseWith implements hub.User.
func (u *User) CloseWith(r hub.CloseReason) {
	u.mu.Lock()
	u.reasons = append(u.reasons, r)
	u.mu.Unlock()
}

// WatchlistChange implements hub.User.
func (u *User) WatchlistChange(userID string, online bool) {
	u.mu.Lock()
	u.changes = append(u.changes, WatchlistChange{userID, online})
	u.mu.Unlock()
}

// Closes returns the reasons it was closed with, in order.
func (u *User) Closes() []hub.CloseReason {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]hub.CloseReason(nil), u.reasons...)
}

// Changes returns the watchlist changes it heard, in order.
func (u *User) Changes() []WatchlistChange {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]WatchlistChange(nil), u.changes...)
}
