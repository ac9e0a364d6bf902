package redisbroker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// One node id, one process. Two processes configured with one node id
// would write their presence connections, counts and users under one
// registration, and each one's cleanup and re-registration would undo the
// other's: members would vanish or linger. So a process writes under its
// node id only while it holds the id's claim: a key holding a random
// token of the process's, for the node TTL, refreshed by its heartbeats.
//
// At start the broker takes the claim before anything else (before it
// removes what an earlier process of the id left behind). Held by another
// token, it waits for the claim to expire, as a crashed predecessor's
// does within the node TTL; still held after the node TTL and one refresh
// (a live process refreshes it every refresh), the broker gives up with
// ErrNodeIDInUse. While running, every script that writes the node's
// state checks the token (see scripts.go); the heartbeat refreshes the
// claim, or takes it again when it was lost (a Redis restart loses it
// with everything else). A script or heartbeat that finds another token
// in it makes the broker stop writing, with ErrNodeIDTaken. Close gives
// the claim up, so that a node stopped and started again under its id
// does not wait.

// ErrNodeIDInUse is why a broker failed at start: another running process
// kept the claim of its node id for longer than a crashed one's could
// last. The error wrapping it names the node id.
var ErrNodeIDInUse = errors.New("another running process holds this node id")

// ErrNodeIDTaken is why a running broker stopped writing to Redis:
// another process took the claim of its node id (it started with the same
// id after this one's claim had lapsed, say across a partition longer
// than the node TTL). What is registered under the id is the other
// process's from then on. The error wrapping it names the node id.
var ErrNodeIDTaken = errors.New("another process took over this node id")

// claimPoll is how often a starting broker looks whether the claim it
// waits for has expired.
const claimPoll = 100 * time.Millisecond

// newToken is a process's claim token: random, never shared.
func newToken() string {
	var t [16]byte
	rand.Read(t[:])
	return hex.EncodeToString(t[:])
}

// claimTTL is the claim's lifetime as a script argument: the node TTL.
func (b *Broker) claimTTL() string { return strconv.FormatInt(b.nodeTTL.Milliseconds(), 10) }

// claim takes the node id's claim on c, waiting for another process's to
// expire; waiting is called once if it has to wait. It fails with
// ErrNodeIDInUse when the claim is still held after the node TTL and one
// refresh, with the broker's context error at Close, and with Redis's
// error if Redis fails meanwhile (the caller tries again).
//
// The wait is timed by the real clock, not Options.Clock: the claim
// expires by Redis's.
func (b *Broker) claim(c rueidis.Client, waiting func()) error {
	var since time.Time
	for {
		ctx, cancel := context.WithTimeout(b.ctx, subTimeout)
		ok, err := takeClaim.Exec(ctx, c, []string{b.k.claim(b.node)}, []string{b.token, b.claimTTL()}).AsInt64()
		cancel()
		if err != nil {
			b.claiming.Store(false)
			return err
		}
		if ok == 1 {
			if !since.IsZero() {
				b.claiming.Store(false)
				b.log.Info("took this node id's claim after the earlier holder's expired",
					"waited", time.Since(since).Round(time.Millisecond).String())
			}
			return nil
		}
		if since.IsZero() {
			since = time.Now()
			b.claiming.Store(true)
			b.log.Warn("another process holds this node id; waiting for its claim to expire",
				"node_ttl", b.nodeTTL.String())
			waiting()
		}
		if wait := b.nodeTTL + b.refresh; time.Since(since) > wait {
			b.claiming.Store(false)
			return fmt.Errorf("redisbroker: node id %q: %w (its claim was still held after %v; give every node its own id)",
				b.node, ErrNodeIDInUse, wait)
		}
		if !b.sleep(claimPoll) {
			return b.ctx.Err()
		}
	}
}

// errClaimWait is why a broker waiting for its claim has no connection.
var errClaimWait = errors.New("waiting for another process's claim of this node id to expire")

// isTaken reports whether err is a script's refusal because another
// process holds the node id's claim.
func isTaken(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), takenReply)
}

// taken handles a script's reply err: when it says another process holds
// the node id, the broker stops writing and reports ErrNodeIDTaken, which
// the returned error wraps; otherwise err is returned as it is.
func (b *Broker) taken(err error) error {
	if !isTaken(err) {
		return err
	}
	return b.stop(fmt.Errorf("redisbroker: node id %q: %w; this node stopped writing to redis", b.node, ErrNodeIDTaken))
}

// stop ends the broker's writes for good with err, the first time, and
// returns the error it stopped with. Failed and Err report it.
func (b *Broker) stop(err error) error {
	b.failOnce.Do(func() {
		b.failErr = err
		b.log.Debug("broker stopped: nothing more of this node is written to redis", "err", err)
		close(b.failed)
		kick(b.writeKick)
		kick(b.keeperKick)
	})
	return b.failErr
}

// stopped returns the error the broker stopped with, or nil.
func (b *Broker) stopped() error {
	select {
	case <-b.failed:
		return b.failErr
	default:
		return nil
	}
}

// Failed is closed when the broker stopped writing for good without being
// closed: at start, because another running process holds its node id
// (ErrNodeIDInUse), or later, because another process took it over
// (ErrNodeIDTaken). The node must then go: it serves its local
// connections still, but nothing it changes reaches the cluster. Err
// says why.
func (b *Broker) Failed() <-chan struct{} { return b.failed }

// Err is why Failed is closed, nil while it is not.
func (b *Broker) Err() error { return b.stopped() }

// Claiming reports whether the broker is waiting, at start, for another
// process's claim of its node id to expire.
func (b *Broker) Claiming() bool { return b.claiming.Load() }

// release gives up the claim if this process holds it: a node started
// again under its id need not wait for it to expire.
func (b *Broker) release(ctx context.Context, c rueidis.Client) error {
	return settle.Exec(ctx, c, []string{b.k.claim(b.node)}, []string{b.token}).Error()
}
