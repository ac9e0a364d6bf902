//go:build race

package httpapi

// raceEnabled: the race detector changes scheduling and allocation, so
// allocation counts are only checked without it.
const raceEnabled = true
