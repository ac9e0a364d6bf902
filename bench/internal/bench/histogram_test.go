package bench

import (
	"math"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	// Each bucket's range must start right after the previous one's and
	// hold only values that map to it.
	prevHigh := int64(-1)
	for i := 0; i < histBuckets; i++ {
		high := bucketHigh(i)
		if high <= prevHigh {
			t.Fatalf("bucket %d: high %d not above previous %d", i, high, prevHigh)
		}
		lo := prevHigh + 1
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(high); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", high, got, i)
		}
		// Relative width stays under 1/128 past the exact range.
		if lo >= histSub && float64(high-lo+1)/float64(lo) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d", i, lo, high, histSub)
		}
		prevHigh = high
		if high == math.MaxInt64 {
			break
		}
	}
	if prevHigh != math.MaxInt64 {
		t.Fatalf("buckets end at %d, not MaxInt64", prevHigh)
	}
}

func TestQuantilesOfUniformDistribution(t *testing.T) {
	var h Histogram
	for v := 1; v <= 100000; v++ { // 1µs … 100ms
		h.Record(time.Duration(v) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.9, 90 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 99900 * time.Microsecond},
		{1, 100 * time.Millisecond},
	} {
		got := h.Quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.01 {
			t.Errorf("Quantile(%v) = %v, want %v within 1%%", tc.q, got, tc.want)
		}
		if got > h.Max() {
			t.Errorf("Quantile(%v) = %v above max %v", tc.q, got, h.Max())
		}
	}
	if h.Count() != 100000 || h.Min() != time.Microsecond || h.Max() != 100*time.Millisecond {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if want := 50000500 * time.Nanosecond; h.Mean() != want {
		t.Errorf("mean %v, want %v", h.Mean(), want)
	}
}

func TestQuantileSkewedAndExact(t *testing.T) {
	var h Histogram
	for range 98 {
		h.Record(100) // exact range: 100ns
	}
	h.Record(time.Second)
	h.Record(2 * time.Second)
	if got := h.Quantile(0.5); got != 100 {
		t.Errorf("p50 = %v, want 100ns", got)
	}
	if got := h.Quantile(0.98); got != 100 {
		t.Errorf("p98 = %v, want 100ns", got)
	}
	if got := h.Quantile(0.99); math.Abs(float64(got-time.Second)) > 0.01*float64(time.Second) {
		t.Errorf("p99 = %v, want ~1s", got)
	}
	if got := h.Quantile(1); got != 2*time.Second {
		t.Errorf("p100 = %v, want exactly the max 2s", got)
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Min() != 0 || h.Max() != 0 {
		t.Error("empty histogram should report zeros")
	}
	h.Record(-5 * time.Millisecond) // skewed clocks count as zero
	if h.Min() != 0 || h.Max() != 0 || h.Count() != 1 {
		t.Errorf("negative sample: min %v max %v count %d", h.Min(), h.Max(), h.Count())
	}
	h.Record(0)
	if h.Quantile(1) != 0 {
		t.Errorf("all-zero p100 = %v", h.Quantile(1))
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for v := 1; v <= 1000; v++ {
		d := time.Duration(v*v) * time.Microsecond
		all.Record(d)
		if v%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(new(Histogram))
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() || m.Mean() != all.Mean() {
		t.Fatalf("merged count/min/max/mean %d %v %v %v, want %d %v %v %v",
			m.Count(), m.Min(), m.Max(), m.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, direct %v", q, m.Quantile(q), all.Quantile(q))
		}
	}
}

func TestSummaryInMilliseconds(t *testing.T) {
	var h Histogram
	h.Record(1500 * time.Microsecond)
	s := h.Summary()
	if s.Count != 1 || math.Abs(s.P50MS-1.5) > 0.015 || s.MaxMS != 1.5 || s.MinMS != 1.5 {
		t.Errorf("summary %+v", s)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(time.Duration(i&0xFFFFF) * time.Microsecond)
	}
}
