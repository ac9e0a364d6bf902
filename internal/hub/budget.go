package hub

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/internal/ratelimit"
)

// Budget is how often one user may do something on this node: Rate times a
// second, in bursts of up to Burst. The zero Budget is no bound.
type Budget struct{ Rate, Burst int }

// budgetSweep is how often the user budgets that have refilled are dropped:
// an entry outlives its refill by at most this long.
const budgetSweep = time.Second

type budgetKind uint8

const (
	budgetJoin   budgetKind = iota // presence joins (TakeJoin)
	budgetSignin                   // sign-ins that bring a user online here (SignIn)
)

type budgetKey struct {
	app, user string
	kind      budgetKind
}

// budgets are the per-user token buckets of this node, by app, user and
// what they bound. They bound what no per-connection limit can: a user who
// reconnects in a loop gets a fresh connection, with fresh per-connection
// buckets, every round, and every round is announced to others (a presence
// member added and removed, a watchlist online and offline).
//
// Locking: a bucket is read and written under its shard's lock, held for
// the map lookup and the bucket's arithmetic only. mu guards the sweep's
// timer; it is taken after a shard's lock, never before one.
//
// An entry exists only while its bucket is short of full: the sweep, on the
// hub's clock, drops the entries that have refilled (a full bucket is what
// a missing entry stands for), and re-arms itself only while entries
// remain. So the entries are those of users who joined or signed in during
// the last refill time plus budgetSweep, and an idle node holds no timer.
type budgets struct {
	clock  Clock
	seed   maphash.Seed
	shards [numShards]budgetShard
	n      atomic.Int64 // entries, over all shards
	armed  atomic.Bool  // a sweep is due; written under mu

	mu      sync.Mutex
	timer   Timer
	closed  bool
	running sync.WaitGroup // the armed or running sweep
}

type budgetShard struct {
	mu sync.Mutex
	m  map[budgetKey]ratelimit.Bucket
}

func (b *budgets) init(clock Clock) {
	b.clock = clock
	b.seed = maphash.MakeSeed()
	for i := range b.shards {
		b.shards[i].m = map[budgetKey]ratelimit.Bucket{}
	}
}

func (b *budgets) shard(k budgetKey) *budgetShard {
	return &b.shards[appKeyHash(b.seed, k.app, k.user)%numShards]
}

// take spends one token of k's bucket, created full at its first use, and
// reports whether there was one. A zero Budget always allows.
func (b *budgets) take(k budgetKey, lim Budget) bool {
	if lim.Rate <= 0 {
		return true
	}
	now := b.clock.Now()
	sh := b.shard(k)
	sh.mu.Lock()
	bk, ok := sh.m[k]
	if !ok {
		bk = ratelimit.NewBurst(lim.Rate, max(lim.Burst, 1), now)
	}
	allowed := bk.Take(now)
	sh.m[k] = bk
	sh.mu.Unlock()
	if !ok {
		b.n.Add(1)
		// After the count: a sweep that finds no entries clears armed
		// before it counts them, so either it sees this one or this sees
		// armed cleared.
		if !b.armed.Load() {
			b.arm()
		}
	}
	return allowed
}

// arm makes a sweep due, unless one is or the hub is closed.
func (b *budgets) arm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed.Load() || b.closed {
		return
	}
	b.armed.Store(true)
	b.running.Add(1)
	if b.timer == nil {
		b.timer = b.clock.AfterFunc(budgetSweep, b.sweep)
	} else {
		b.timer.Reset(budgetSweep)
	}
}

// sweep drops the entries whose buckets have refilled, one shard at a time,
// and comes back while entries remain.
func (b *budgets) sweep() {
	defer b.running.Done()
	now := b.clock.Now()
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		dropped := 0
		for k, bk := range sh.m {
			if bk.Full(now) {
				delete(sh.m, k)
				dropped++
			}
		}
		sh.mu.Unlock()
		b.n.Add(int64(-dropped))
	}
	b.mu.Lock()
	b.armed.Store(false)
	b.mu.Unlock()
	if b.n.Load() > 0 {
		b.arm()
	}
}

// close stops the sweep and waits for one that is running.
func (b *budgets) close() {
	b.mu.Lock()
	b.closed = true
	if b.armed.Load() && b.timer.Stop() {
		b.armed.Store(false)
		b.running.Done()
	}
	b.mu.Unlock()
	b.running.Wait()
}

// entries is the number of user budgets held.
func (b *budgets) entries() int { return int(b.n.Load()) }

// TakeJoin spends one of the user's presence-join tokens on this node and
// reports whether there was one: with the connection's own bucket, what
// bounds the member events one user can make a channel's members receive,
// however many connections (of either protocol) it joins from. Every join
// counts, including one that turns out not to be announced (the user is
// already a member through another connection): that is known only after
// the broker answers.
//
// The budget is per node: a user whose connections are spread over N nodes
// has N of them.
func (h *Hub) TakeJoin(appID, userID string, lim Budget) bool {
	return h.budgets.take(budgetKey{appID, userID, budgetJoin}, lim)
}
