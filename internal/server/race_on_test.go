//go:build race

package server

// raceEnabled: the race detector changes scheduling and allocation, so
// allocation counts are only checked without it.
const raceEnabled = true
