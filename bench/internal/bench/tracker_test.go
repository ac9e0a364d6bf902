package bench

import (
	"math/rand/v2"
	"testing"
)

func TestStreamVerdicts(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []uint32
		total    uint32
		excluded []uint32
		want     Counts
		missing  uint64
	}{
		{name: "in order", seqs: []uint32{0, 1, 2, 3}, total: 4, want: Counts{Received: 4, Unique: 4}},
		{name: "nothing", total: 3, missing: 3},
		{name: "tail missing", seqs: []uint32{0, 1}, total: 5, want: Counts{Received: 2, Unique: 2}, missing: 3},
		{name: "head missing", seqs: []uint32{2, 3}, total: 4, want: Counts{Received: 2, Unique: 2}, missing: 2},
		{name: "hole", seqs: []uint32{0, 1, 4, 5}, total: 6, want: Counts{Received: 4, Unique: 4}, missing: 2},
		{name: "duplicate of the last", seqs: []uint32{0, 1, 1, 2}, total: 3, want: Counts{Received: 4, Unique: 3, Duplicate: 1}},
		{name: "duplicate of an old one", seqs: []uint32{0, 1, 2, 0}, total: 3, want: Counts{Received: 4, Unique: 3, Duplicate: 1}},
		{name: "swapped pair", seqs: []uint32{0, 2, 1, 3}, total: 4, want: Counts{Received: 4, Unique: 4, OutOfOrder: 1}},
		{name: "reversed", seqs: []uint32{4, 3, 2, 1, 0}, total: 5, want: Counts{Received: 5, Unique: 5, OutOfOrder: 4}},
		{name: "late then duplicate", seqs: []uint32{0, 3, 1, 1, 2, 2}, total: 4, want: Counts{Received: 6, Unique: 4, OutOfOrder: 2, Duplicate: 2}},
		{name: "late fills the middle of a gap", seqs: []uint32{0, 10, 5, 4, 6}, total: 11, want: Counts{Received: 5, Unique: 5, OutOfOrder: 3}, missing: 6},
		{name: "duplicate inside an old gap edge", seqs: []uint32{0, 5, 3, 3}, total: 6, want: Counts{Received: 4, Unique: 3, OutOfOrder: 1, Duplicate: 1}, missing: 3},
		{name: "failed publishes are not missing", seqs: []uint32{0, 2}, total: 4, excluded: []uint32{1, 3}, want: Counts{Received: 2, Unique: 2}},
		{name: "failed publish that arrived anyway", seqs: []uint32{0, 1, 2}, total: 3, excluded: []uint32{1}, want: Counts{Received: 3, Unique: 3}},
		{name: "events beyond the total", seqs: []uint32{0, 1, 2, 7}, total: 3, want: Counts{Received: 4, Unique: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s Stream
			var c Counts
			for _, seq := range tc.seqs {
				c.Add(s.Observe(seq))
			}
			if c != tc.want {
				t.Errorf("counts %+v, want %+v", c, tc.want)
			}
			if got := s.Missing(tc.total, tc.excluded); got != tc.missing {
				t.Errorf("missing %d, want %d", got, tc.missing)
			}
		})
	}
}

// TestStreamAgainstModel checks the gap bookkeeping against a plain set on
// random deliveries with losses, duplicates and reordering.
func TestStreamAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		total := uint32(1 + r.IntN(300))
		var seqs []uint32
		for i := range total {
			switch r.IntN(10) {
			case 0: // lost
			case 1: // duplicated
				seqs = append(seqs, i, i)
			default:
				seqs = append(seqs, i)
			}
		}
		for range r.IntN(20) { // local reordering
			if len(seqs) < 2 {
				break
			}
			i := r.IntN(len(seqs) - 1)
			j := min(len(seqs)-1, i+1+r.IntN(5))
			seqs[i], seqs[j] = seqs[j], seqs[i]
		}

		var s Stream
		var c Counts
		seen := map[uint32]bool{}
		highest := int64(-1)
		var want Counts
		for _, seq := range seqs {
			c.Add(s.Observe(seq))
			want.Received++
			switch {
			case seen[seq]:
				want.Duplicate++
			case int64(seq) < highest:
				want.Unique++
				want.OutOfOrder++
			default:
				want.Unique++
			}
			seen[seq] = true
			highest = max(highest, int64(seq))
		}
		if c != want {
			t.Fatalf("round %d: counts %+v, want %+v (seqs %v)", round, c, want, seqs)
		}
		var missing uint64
		for i := range total {
			if !seen[i] {
				missing++
			}
			if s.Received(i) != seen[i] {
				t.Fatalf("round %d: Received(%d) = %v, want %v", round, i, s.Received(i), seen[i])
			}
		}
		if got := s.Missing(total, nil); got != missing {
			t.Fatalf("round %d: missing %d, want %d", round, got, missing)
		}
	}
}

func TestCountsMerge(t *testing.T) {
	a := Counts{Received: 5, Unique: 4, Duplicate: 1, OutOfOrder: 2, Unexpected: 3}
	a.Merge(Counts{Received: 1, Unique: 1, Duplicate: 0, OutOfOrder: 1, Unexpected: 1})
	if want := (Counts{Received: 6, Unique: 5, Duplicate: 1, OutOfOrder: 3, Unexpected: 4}); a != want {
		t.Errorf("merged %+v, want %+v", a, want)
	}
}
