package broker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCacheTTL is how long a cache channel remembers its last event.
const DefaultCacheTTL = 30 * time.Minute

// Memory is the single-node broker: Publish hands the message straight to
// the handler in the caller's goroutine, so order per channel is the order of
// Publish calls. Presence and cache state live in maps, each under its own
// lock; neither is on the broadcast path.
type Memory struct {
	closed   atomic.Bool
	handler  Handler
	cacheTTL time.Duration
	now      func() time.Time

	cacheMu sync.Mutex
	cache   map[chanKey]cached

	presMu   sync.Mutex
	presence map[chanKey]*presenceChannel

	// local, if set, has every channel's count; counts then holds only
	// those of the apps whose transitions are reported, which need the
	// previous count. Without local, counts holds them all.
	local   LocalCounts
	countMu sync.Mutex
	counts  map[chanKey]int

	// userMu orders sign-in transitions: a user's online and offline
	// messages reach the handler in the order their counts changed.
	userMu sync.Mutex
	users  map[chanKey]int // by app and user id

	// trans receives the transitions (nil: none reported); pending holds
	// the vacancies and removals not yet settled, under pendMu.
	trans     TransitionHandler
	transApps func(appID string) bool // nil: every app
	pendMu    sync.Mutex
	pending   map[pendKey]pendingEntry
	epoch     int64
	pruneAt   int
}

// pendKey is a pending vacancy (user "", member false) or removal.
type pendKey struct {
	app, channel, user string
	member             bool
}

type pendingEntry struct {
	epoch   int64
	expires time.Time
}

var (
	_ Broker          = (*Memory)(nil)
	_ LocalCountsUser = (*Memory)(nil)
)

// UseLocalCounts implements LocalCountsUser. Call it before the first
// SetLocalCount.
func (b *Memory) UseLocalCounts(lc LocalCounts) { b.local = lc }

type chanKey struct{ app, channel string }

type cached struct {
	msg     Message
	expires time.Time
}

type presenceChannel struct {
	order []string                 // user ids in join order
	users map[string]*presenceUser // by user id
}

type presenceUser struct {
	member Member
	conns  map[string]struct{}
}

// NewMemory returns a single-node broker. cacheTTL <= 0 means
// DefaultCacheTTL.
func NewMemory(cacheTTL time.Duration) *Memory {
	if cacheTTL <= 0 {
		cacheTTL = DefaultCacheTTL
	}
	return &Memory{
		handler:  func(Message) {},
		cacheTTL: cacheTTL,
		now:      time.Now,
		cache:    map[chanKey]cached{},
		presence: map[chanKey]*presenceChannel{},
		counts:   map[chanKey]int{},
		users:    map[chanKey]int{},
		pending:  map[pendKey]pendingEntry{},
		pruneAt:  64,
	}
}

// SetTransitionHandler implements Transitions. On one node every change is
// a cluster-wide one.
func (b *Memory) SetTransitionHandler(h TransitionHandler, apps func(appID string) bool) {
	b.trans, b.transApps = h, apps
}

// tracks reports whether transitions of app are reported.
func (b *Memory) tracks(app string) bool {
	return b.trans != nil && (b.transApps == nil || b.transApps(app))
}

// Settle implements Transitions.
func (b *Memory) Settle(ctx context.Context, t Transition) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	k := pendKey{t.AppID, t.Channel, t.UserID, t.Kind == TransitionMemberRemoved}
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	if e, ok := b.pending[k]; ok && e.epoch == t.Epoch {
		delete(b.pending, k)
		return true, nil
	}
	return false, nil
}

// pend records a pending transition and returns its epoch. Entries nobody
// settles expire after PendingHold; they are pruned as the map grows.
func (b *Memory) pend(k pendKey) int64 {
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	now := b.now()
	if len(b.pending) >= b.pruneAt {
		for pk, e := range b.pending {
			if now.After(e.expires) {
				delete(b.pending, pk)
			}
		}
		b.pruneAt = max(64, 2*len(b.pending))
	}
	b.epoch++
	b.pending[k] = pendingEntry{epoch: b.epoch, expires: now.Add(PendingHold)}
	return b.epoch
}

// unpend cancels a pending transition, reporting whether there was one.
func (b *Memory) unpend(k pendKey) bool {
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	e, ok := b.pending[k]
	delete(b.pending, k)
	return ok && !b.now().After(e.expires)
}

// SetHandler implements Broker.
func (b *Memory) SetHandler(h Handler) { b.handler = h }

// Publish implements Broker.
func (b *Memory) Publish(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed.Load() {
		return ErrClosed
	}
	if m.Cache && m.Kind == KindEvent {
		b.cacheMu.Lock()
		b.cache[chanKey{m.AppID, m.Channel}] = cached{msg: m, expires: b.now().Add(b.cacheTTL)}
		b.cacheMu.Unlock()
	}
	b.handler(m)
	return nil
}

// Ping implements Broker: the memory broker serves while it is open.
func (b *Memory) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Close implements Broker. Publishing fails afterwards; the state already
// held stays readable, which no caller needs but none is hurt by.
func (b *Memory) Close(context.Context) error {
	b.closed.Store(true)
	return nil
}

// LastEvent implements Broker.
func (b *Memory) LastEvent(ctx context.Context, appID, channel string) (Cached, bool, error) {
	k := chanKey{appID, channel}
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	c, ok := b.cache[k]
	if !ok {
		return Cached{}, false, nil
	}
	left := c.expires.Sub(b.now())
	if left <= 0 {
		delete(b.cache, k)
		return Cached{}, false, nil
	}
	return Cached{Message: c.msg, TTL: left}, true, nil
}

// SetLocalCount implements Occupancy: on one node the local count is the
// cluster's.
func (b *Memory) SetLocalCount(appID, channel string, n int) {
	if b.local != nil && !b.tracks(appID) {
		return // the hub's count is the one
	}
	k := chanKey{appID, channel}
	b.countMu.Lock()
	defer b.countMu.Unlock()
	old := b.counts[k]
	if n > 0 {
		b.counts[k] = n
	} else {
		delete(b.counts, k)
	}
	if old == n || !b.tracks(appID) {
		return
	}
	h := b.trans
	// Reported under countMu, so in the order the counts changed.
	pk := pendKey{app: appID, channel: channel}
	if old <= 0 && n > 0 && !b.unpend(pk) {
		h(Transition{Kind: TransitionOccupied, AppID: appID, Channel: channel})
	}
	h(Transition{Kind: TransitionCount, AppID: appID, Channel: channel, Count: max(n, 0)})
	if old > 0 && n <= 0 {
		h(Transition{Kind: TransitionVacated, AppID: appID, Channel: channel, Epoch: b.pend(pk)})
	}
}

// InterestReady implements Occupancy: every message reaches the one node.
func (b *Memory) InterestReady(appID, channel string) bool { return true }

// AwaitInterest implements Occupancy.
func (b *Memory) AwaitInterest(ctx context.Context, appID, channel string) error { return ctx.Err() }

// SubscriptionCount implements Occupancy.
func (b *Memory) SubscriptionCount(ctx context.Context, appID, channel string) (int, error) {
	if b.local != nil {
		return b.local.SubscriptionCount(appID, channel), nil
	}
	b.countMu.Lock()
	defer b.countMu.Unlock()
	return b.counts[chanKey{appID, channel}], nil
}

// Channels implements Occupancy.
func (b *Memory) Channels(ctx context.Context, appID, prefix string) ([]ChannelCount, error) {
	if b.local != nil {
		return b.local.Channels(appID, prefix), nil
	}
	b.countMu.Lock()
	var out []ChannelCount
	for k, n := range b.counts {
		if k.app == appID && strings.HasPrefix(k.channel, prefix) {
			out = append(out, ChannelCount{Name: k.channel, Subscriptions: n})
		}
	}
	b.countMu.Unlock()
	slices.SortFunc(out, func(a, b ChannelCount) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// SetLocalUser implements UserRegistry. The transitions are delivered to
// the handler in the caller's goroutine, as publications are, in the order
// the counts changed.
func (b *Memory) SetLocalUser(appID, userID string, n int) {
	k := chanKey{appID, userID}
	b.userMu.Lock()
	defer b.userMu.Unlock()
	was := b.users[k] > 0
	if n > 0 {
		b.users[k] = n
	} else {
		delete(b.users, k)
	}
	switch {
	case !was && n > 0:
		b.handler(Message{Kind: KindUserOnline, AppID: appID, UserID: userID})
	case was && n <= 0:
		b.handler(Message{Kind: KindUserOffline, AppID: appID, UserID: userID})
	}
}

// OnlineUsers implements UserRegistry.
func (b *Memory) OnlineUsers(ctx context.Context, appID string, ids []string) ([]string, error) {
	b.userMu.Lock()
	defer b.userMu.Unlock()
	var out []string
	for _, id := range ids {
		if b.users[chanKey{appID, id}] > 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

// MemberCount implements PresenceManager.
func (b *Memory) MemberCount(ctx context.Context, appID, channel string) (int, error) {
	b.presMu.Lock()
	defer b.presMu.Unlock()
	if pc := b.presence[chanKey{appID, channel}]; pc != nil {
		return len(pc.users), nil
	}
	return 0, nil
}

// Join implements PresenceManager.
func (b *Memory) Join(ctx context.Context, appID, channel, connID string, m Member, maxMembers int) (bool, error) {
	k := chanKey{appID, channel}
	b.presMu.Lock()
	defer b.presMu.Unlock()
	pc := b.presence[k]
	if pc == nil {
		pc = &presenceChannel{users: map[string]*presenceUser{}}
		b.presence[k] = pc
	}
	u := pc.users[m.UserID]
	if u == nil {
		if maxMembers > 0 && len(pc.users) >= maxMembers {
			if len(pc.users) == 0 {
				delete(b.presence, k)
			}
			return false, ErrMemberLimit
		}
		u = &presenceUser{member: m, conns: map[string]struct{}{}}
		pc.users[m.UserID] = u
		pc.order = append(pc.order, m.UserID)
	} else {
		// The latest signed user_info wins, as with a fresh auth.
		u.member.Info = m.Info
	}
	_, again := u.conns[connID]
	u.conns[connID] = struct{}{}
	first := len(u.conns) == 1
	if first && !again && b.tracks(appID) && !b.unpend(pendKey{appID, channel, m.UserID, true}) {
		b.trans(Transition{Kind: TransitionMemberAdded, AppID: appID, Channel: channel, UserID: m.UserID})
	}
	return first, nil
}

// Leave implements PresenceManager.
func (b *Memory) Leave(ctx context.Context, appID, channel, connID, userID string) (bool, error) {
	k := chanKey{appID, channel}
	b.presMu.Lock()
	defer b.presMu.Unlock()
	pc := b.presence[k]
	if pc == nil {
		return false, nil
	}
	u := pc.users[userID]
	if u == nil {
		return false, nil
	}
	if _, ok := u.conns[connID]; !ok {
		return false, nil
	}
	delete(u.conns, connID)
	if len(u.conns) > 0 {
		return false, nil
	}
	delete(pc.users, userID)
	for i, id := range pc.order {
		if id == userID {
			pc.order = append(pc.order[:i], pc.order[i+1:]...)
			break
		}
	}
	if len(pc.users) == 0 {
		delete(b.presence, k)
	}
	if b.tracks(appID) {
		b.trans(Transition{Kind: TransitionMemberRemoved, AppID: appID, Channel: channel, UserID: userID,
			Epoch: b.pend(pendKey{appID, channel, userID, true})})
	}
	return true, nil
}

// Members implements PresenceManager.
func (b *Memory) Members(ctx context.Context, appID, channel string) ([]Member, error) {
	b.presMu.Lock()
	defer b.presMu.Unlock()
	pc := b.presence[chanKey{appID, channel}]
	if pc == nil {
		return nil, nil
	}
	out := make([]Member, 0, len(pc.order))
	for _, id := range pc.order {
		out = append(out, pc.users[id].member)
	}
	return out, nil
}
