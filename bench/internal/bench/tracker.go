package bench

import (
	"slices"
	"sort"
)

// Verdict is what one received event means for its stream.
type Verdict uint8

const (
	// InOrder: the next expected event, or one past a gap (first receipt).
	InOrder Verdict = iota
	// Late: an event that was skipped earlier and now arrives (first
	// receipt, but out of order).
	Late
	// Duplicate: an event already received.
	Duplicate
)

// span is the half-open range [lo, hi) of sequence numbers not yet received.
type span struct{ lo, hi uint32 }

// Stream tracks one ordered stream of sequence numbers 0, 1, 2, … as seen by
// one receiver. In the normal case (everything in order) it is a counter;
// it remembers gaps only when events are skipped, so holding one per
// connection, channel and publisher stays cheap. Not safe for concurrent
// use: a stream belongs to its connection's reader.
type Stream struct {
	next uint32  // one past the highest sequence number received
	gaps *[]span // sorted, disjoint ranges below next still missing
}

// Observe records the receipt of seq.
func (s *Stream) Observe(seq uint32) Verdict {
	switch {
	case seq == s.next:
		s.next++
		return InOrder
	case seq > s.next:
		if s.gaps == nil {
			s.gaps = new([]span)
		}
		*s.gaps = append(*s.gaps, span{s.next, seq})
		s.next = seq + 1
		return InOrder
	}
	if s.gaps == nil {
		return Duplicate
	}
	g := *s.gaps
	i := sort.Search(len(g), func(i int) bool { return g[i].hi > seq })
	if i == len(g) || g[i].lo > seq {
		return Duplicate
	}
	switch sp := g[i]; {
	case sp.lo == seq && sp.hi == seq+1:
		g = slices.Delete(g, i, i+1)
	case sp.lo == seq:
		g[i].lo++
	case sp.hi == seq+1:
		g[i].hi--
	default:
		g[i].hi = seq
		g = slices.Insert(g, i+1, span{seq + 1, sp.hi})
	}
	*s.gaps = g
	return Late
}

// Received reports whether seq has been received.
func (s *Stream) Received(seq uint32) bool {
	if seq >= s.next {
		return false
	}
	if s.gaps == nil {
		return true
	}
	g := *s.gaps
	i := sort.Search(len(g), func(i int) bool { return g[i].hi > seq })
	return i == len(g) || g[i].lo > seq
}

// Missing counts the sequence numbers below total that were never received,
// leaving out those in excluded (events whose publish failed, which the
// server may or may not have delivered). excluded must not repeat a number.
func (s *Stream) Missing(total uint32, excluded []uint32) uint64 {
	var n uint64
	if total > s.next {
		n = uint64(total - s.next)
	}
	if s.gaps != nil {
		for _, sp := range *s.gaps {
			hi := min(sp.hi, total)
			if hi > sp.lo {
				n += uint64(hi - sp.lo)
			}
		}
	}
	for _, x := range excluded {
		if x < total && !s.Received(x) {
			n--
		}
	}
	return n
}

// Counts are the delivery totals over many streams.
type Counts struct {
	Received   uint64 `json:"received"`     // benchmark events received, duplicates included
	Unique     uint64 `json:"unique"`       // distinct events received
	Duplicate  uint64 `json:"duplicate"`    // received more than once
	OutOfOrder uint64 `json:"out_of_order"` // received after a later event of the same stream
	Unexpected uint64 `json:"unexpected"`   // events that matched no stream (bad mark, unknown channel)
}

// Add records one verdict.
func (c *Counts) Add(v Verdict) {
	c.Received++
	switch v {
	case InOrder:
		c.Unique++
	case Late:
		c.Unique++
		c.OutOfOrder++
	case Duplicate:
		c.Duplicate++
	}
}

// Merge adds o to c.
func (c *Counts) Merge(o Counts) {
	c.Received += o.Received
	c.Unique += o.Unique
	c.Duplicate += o.Duplicate
	c.OutOfOrder += o.OutOfOrder
	c.Unexpected += o.Unexpected
}
