package hub

import (
	"context"
	"sync"

	"github.com/heraldhq/herald/internal/broker"
)

// User is a local connection that completed sign-in.
type User interface {
	// CloseWith ends the connection (ReasonTerminated when the app ended the
	// user's session). It must not block.
	CloseWith(reason CloseReason)
	// WatchlistChange tells a watcher that a user it watches went online
	// (first signed-in connection) or offline (last one gone). It must not block.
	WatchlistChange(userID string, online bool)
}

type userKey struct{ app, user string }

// users tracks signed-in connections and watchlists. Sign-in and watchlist
// changes are rare next to publications, so one lock is enough; callbacks run
// after it is released.
type users struct {
	mu       sync.Mutex
	conns    map[userKey]map[User]struct{}
	watchers map[userKey]map[User]struct{}
}

func (u *users) init() {
	u.conns = map[userKey]map[User]struct{}{}
	u.watchers = map[userKey]map[User]struct{}{}
}

// SignIn records that c is signed in as userID. Watchers of the user hear
// "online" when this is the user's first connection.
func (h *Hub) SignIn(appID, userID string, c User) {
	k := userKey{appID, userID}
	h.users.mu.Lock()
	set := h.users.conns[k]
	if set == nil {
		set = map[User]struct{}{}
		h.users.conns[k] = set
	}
	set[c] = struct{}{}
	var notify []User
	if len(set) == 1 {
		notify = h.users.watchersOf(k)
	}
	h.users.mu.Unlock()
	for _, w := range notify {
		w.WatchlistChange(userID, true)
	}
}

// SignOut forgets c's sign-in. Watchers hear "offline" when it was the
// user's last connection.
func (h *Hub) SignOut(appID, userID string, c User) {
	k := userKey{appID, userID}
	h.users.mu.Lock()
	set := h.users.conns[k]
	var notify []User
	if _, ok := set[c]; ok {
		delete(set, c)
		if len(set) == 0 {
			delete(h.users.conns, k)
			notify = h.users.watchersOf(k)
		}
	}
	h.users.mu.Unlock()
	for _, w := range notify {
		w.WatchlistChange(userID, false)
	}
}

// Watch registers w as a watcher of ids and returns those of them that are
// online now, in the order given.
func (h *Hub) Watch(appID string, w User, ids []string) (online []string) {
	h.users.mu.Lock()
	defer h.users.mu.Unlock()
	for _, id := range ids {
		k := userKey{appID, id}
		set := h.users.watchers[k]
		if set == nil {
			set = map[User]struct{}{}
			h.users.watchers[k] = set
		}
		set[w] = struct{}{}
		if len(h.users.conns[k]) > 0 {
			online = append(online, id)
		}
	}
	return online
}

// Unwatch removes w as a watcher of ids.
func (h *Hub) Unwatch(appID string, w User, ids []string) {
	h.users.mu.Lock()
	defer h.users.mu.Unlock()
	for _, id := range ids {
		k := userKey{appID, id}
		if set := h.users.watchers[k]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(h.users.watchers, k)
			}
		}
	}
}

// Online reports whether userID has a signed-in connection on this node.
func (h *Hub) Online(appID, userID string) bool {
	h.users.mu.Lock()
	defer h.users.mu.Unlock()
	return len(h.users.conns[userKey{appID, userID}]) > 0
}

// TerminateUser closes every connection signed in as userID, on every node.
func (h *Hub) TerminateUser(ctx context.Context, appID, userID string) error {
	return h.broker.Publish(ctx, broker.Message{Kind: broker.KindTerminate, AppID: appID, UserID: userID})
}

func (u *users) terminate(appID, userID string) {
	u.mu.Lock()
	var conns []User
	for c := range u.conns[userKey{appID, userID}] {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	for _, c := range conns {
		c.CloseWith(ReasonTerminated)
	}
}

func (u *users) watchersOf(k userKey) []User {
	set := u.watchers[k]
	out := make([]User, 0, len(set))
	for w := range set {
		out = append(out, w)
	}
	return out
}
