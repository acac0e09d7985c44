package spec

import (
	"fmt"
	"strings"
)

// suggest returns the candidate closest to got when it is close enough to be a likely typo, else "".
// A candidate that differs only in case always wins.
func suggest(got string, candidates []string) string {
	if got == "" || len(got) > 128 {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		if c == got {
			continue
		}
		if strings.EqualFold(c, got) {
			return c
		}
		d := levenshtein(strings.ToLower(got), strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > maxTypoDistance(got) {
		return ""
	}
	return best
}

// maxTypoDistance is how many edits still read as a typo of a word this long.
func maxTypoDistance(s string) int {
	switch n := len(s); {
	case n <= 3:
		return 1
	case n <= 8:
		return 2
	default:
		return 3
	}
}

// didYouMean renders `; did you mean "x"?` when suggest finds one, else "".
func didYouMean(got string, candidates []string) string {
	if s := suggest(got, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// levenshtein is the edit distance between a and b (insertions, deletions, substitutions), by bytes.
func levenshtein(a, b string) int {
	if len(a) < len(b) {
		a, b = b, a
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteList renders names as `"a", "b" or "c"`.
func quoteList(names []string, conj string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	default:
		return strings.Join(q[:len(q)-1], ", ") + " " + conj + " " + q[len(q)-1]
	}
}
