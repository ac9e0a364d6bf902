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

// users tracks this node's signed-in connections and watchlists. Sign-in
// and watchlist changes are rare next to publications, so one lock is
// enough; callbacks run after it is released.
//
// Whether a user is online is the cluster's business: the hub reports each
// user's local connection count to the broker, which tells every node when
// the user came online or went offline anywhere (KindUserOnline,
// KindUserOffline), and the hub passes that on to its local watchers.
type users struct {
	// report orders the counts reported to the broker per hub: a sign-in
	// and a sign-out racing on one node reach it in the order they changed
	// the count. It is held around the broker call, mu is not, because the
	// memory broker delivers the transition (notify takes mu) at once.
	report   sync.Mutex
	mu       sync.Mutex
	conns    map[userKey]map[User]struct{}
	watchers map[userKey]map[User]struct{}
}

func (u *users) init() {
	u.conns = map[userKey]map[User]struct{}{}
	u.watchers = map[userKey]map[User]struct{}{}
}

// SignIn records that c is signed in as userID, and reports whether it
// did. Watchers of the user, on every node, hear "online" when this is the
// user's first connection in the cluster.
//
// A sign-in that makes c the user's first connection on this node (the
// only kind that can bring the user online, and whose connection's close
// can take it offline) takes a token of the user's sign-in budget, lim;
// with none left, c is not signed in and SignIn reports false. A user
// reconnecting in a loop thus sends every watcher at most two watchlist
// events per token. A sign-in on a node where the user is already signed
// in costs nothing: a page opening tabs, or connecting over both protocols,
// is not counted. The budget is per node, like TakeJoin's.
func (h *Hub) SignIn(appID, userID string, c User, lim Budget) bool {
	k := userKey{appID, userID}
	h.users.report.Lock()
	defer h.users.report.Unlock()
	h.users.mu.Lock()
	set := h.users.conns[k]
	if set == nil {
		if !h.budgets.take(budgetKey{appID, userID, budgetSignin}, lim) {
			h.users.mu.Unlock()
			return false
		}
		set = map[User]struct{}{}
		h.users.conns[k] = set
	}
	set[c] = struct{}{}
	n := len(set)
	h.users.mu.Unlock()
	h.broker.SetLocalUser(appID, userID, n)
	return true
}

// SignOut forgets c's sign-in. Watchers hear "offline" when it was the
// user's last connection in the cluster.
func (h *Hub) SignOut(appID, userID string, c User) {
	k := userKey{appID, userID}
	h.users.report.Lock()
	defer h.users.report.Unlock()
	h.users.mu.Lock()
	set := h.users.conns[k]
	_, ok := set[c]
	if !ok {
		h.users.mu.Unlock()
		return
	}
	delete(set, c)
	n := len(set)
	if n == 0 {
		delete(h.users.conns, k)
	}
	h.users.mu.Unlock()
	h.broker.SetLocalUser(appID, userID, n)
}

// notify passes a user's cluster-wide transition on to this node's watchers.
func (u *users) notify(appID, userID string, online bool) {
	u.mu.Lock()
	ws := u.watchersOf(userKey{appID, userID})
	u.mu.Unlock()
	for _, w := range ws {
		w.WatchlistChange(userID, online)
	}
}

// Watch registers w as a watcher of ids; it hears of their transitions from
// now on. OnlineUsers tells which of them are online now.
func (h *Hub) Watch(appID string, w User, ids []string) {
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
	}
}

// OnlineUsers returns those of ids that are signed in on any node, in the
// order given. It may wait on the broker.
func (h *Hub) OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error) {
	return h.broker.OnlineUsers(ctx, appID, ids)
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
	for _, c := range u.connsOf(appID, userID) {
		c.CloseWith(ReasonTerminated)
	}
}

// ServerUnsubscriber is a signed-in connection whose protocol lets the
// server end one of its subscriptions and tell the client (Centrifugo's
// unsubscribe push). A front end without such a notion does not implement
// it, and its connections keep their subscriptions.
type ServerUnsubscriber interface {
	// ServerUnsubscribe ends the connection's subscription to channel, if
	// it has one, and tells the client. It is called from the broker's
	// handler, possibly with hub locks held: it must not block and must not
	// call back into the hub; it queues the work on the connection's loop.
	ServerUnsubscribe(channel string)
}

// UnsubscribeUser ends the subscriptions to channel of every connection
// signed in as userID, on every node, where the connection's front end
// implements ServerUnsubscriber.
func (h *Hub) UnsubscribeUser(ctx context.Context, appID, channel, userID string) error {
	return h.broker.Publish(ctx, broker.Message{Kind: broker.KindUnsubscribe, AppID: appID, Channel: channel, UserID: userID})
}

func (u *users) unsubscribe(appID, channel, userID string) {
	for _, c := range u.connsOf(appID, userID) {
		if su, ok := c.(ServerUnsubscriber); ok {
			su.ServerUnsubscribe(channel)
		}
	}
}

// connsOf is a snapshot of the user's local signed-in connections.
func (u *users) connsOf(appID, userID string) []User {
	u.mu.Lock()
	defer u.mu.Unlock()
	var conns []User
	for c := range u.conns[userKey{appID, userID}] {
		conns = append(conns, c)
	}
	return conns
}

func (u *users) watchersOf(k userKey) []User {
	set := u.watchers[k]
	out := make([]User, 0, len(set))
	for w := range set {
		out = append(out, w)
	}
	return out
}
