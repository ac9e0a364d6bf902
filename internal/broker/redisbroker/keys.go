package redisbroker

import (
	"errors"
	"strconv"
	"strings"
)

// Every key and pub/sub channel lives under Prefix + ":". The variable
// parts (app id, channel name, user id, node id, connection id) are each
// written as a segment: the length in decimal, a colon, the bytes. A
// segment says where it ends, so no two different tuples of parts make the
// same key whatever bytes an app id holds, and a key's kind (the fixed word
// after the prefix) cannot be mistaken for part of an id.

// appendSeg appends s as one length-prefixed segment.
func appendSeg(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// segs joins parts as consecutive segments.
func segs(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 4
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = appendSeg(b, p)
	}
	return string(b)
}

var errSegs = errors.New("redisbroker: malformed segments")

// splitSegs is the inverse of segs. The cleanup script holds its Lua twin,
// which reads the node registry's values.
func splitSegs(s string) ([]string, error) {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ':')
		if i <= 0 || i > 10 {
			return nil, errSegs
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > len(s)-i-1 || strconv.Itoa(n) != s[:i] {
			return nil, errSegs
		}
		out = append(out, s[i+1:i+1+n])
		s = s[i+1+n:]
	}
	return out, nil
}

// keys names everything the broker stores for one prefix.
type keys struct{ p string } // prefix + ":"

func (k keys) nodes() string   { return k.p + "nodes" }
func (k keys) control() string { return k.p + "ctl" }

func (k keys) registry(node string) string { return k.p + "reg:" + segs(node) }

// claim holds the token of the one process that may write under a node
// id, for the node TTL, refreshed by its heartbeats (see claim.go).
func (k keys) claim(node string) string { return k.p + "claim:" + segs(node) }

// swept marks, for sweptTTL, a node whose registration the others removed
// after its deadline passed, announcing what it held (see Sweep).
func (k keys) swept(node string) string { return k.p + "swept:" + segs(node) }

// pubsub is the Redis channel of one app channel's messages.
func (k keys) pubsub(app, ch string) string { return k.p + "msg:" + segs(app, ch) }
func (k keys) cache(app, ch string) string  { return k.p + "cache:" + segs(app, ch) }

// occ is the hash node -> local count of one channel; apps the hash
// channel -> cluster total of one app.
func (k keys) occ(app, ch string) string { return k.p + "occ:" + segs(app, ch) }
func (k keys) apps(app string) string    { return k.p + "app:" + segs(app) }

// user is the hash node -> signed-in connections of one user.
func (k keys) user(app, user string) string { return k.p + "user:" + segs(app, user) }

// pendingVacancy and pendingRemoval hold the epoch of a channel_vacated
// or member_removed waiting for its delay (webhooks); epochs counts them.
func (k keys) pendingVacancy(app, ch string) string { return k.p + "wvac:" + segs(app, ch) }
func (k keys) pendingRemoval(app, ch, user string) string {
	return k.p + "wrem:" + segs(app, ch, user)
}
func (k keys) epochs() string { return k.p + "wseq" }

// presence holds a presence channel's keys.
type presenceKeys struct {
	conns  string // field node+conn -> user id
	counts string // user id -> connections
	info   string // user id -> user_info
	order  string // sorted set of user ids by join sequence
	seq    string // join sequence counter
}

func (k keys) presence(app, ch string) presenceKeys {
	base := k.p + "pres:" + segs(app, ch) + ":"
	return presenceKeys{base + "conns", base + "counts", base + "info", base + "order", base + "seq"}
}

func (p presenceKeys) list() []string { return []string{p.conns, p.counts, p.info, p.order, p.seq} }
