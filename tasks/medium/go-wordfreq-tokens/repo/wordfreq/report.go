// Package wordfreq computes the "top words" panel of the helpdesk
// dashboard from ticket text.
package wordfreq

import "sort"

// WordCount is one row of the panel.
type WordCount struct {
	Word  string
	Count int
}

// TopWords returns the n most frequent words of text, stop words left
// out, most frequent first and ties in alphabetical order.
func TopWords(text string, n int) []WordCount {
	counts := map[string]int{}
	for _, w := range Tokenize(text) {
		if isStopWord(w) {
			continue
		}
		counts[w]++
	}
	rows := make([]WordCount, 0, len(counts))
	for w, c := range counts {
		rows = append(rows, WordCount{w, c})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Count != rows[j].Count {
			return rows[i].Count > rows[j].Count
		}
		return rows[i].Word < rows[j].Word
	})
	if n >= 0 && len(rows) > n {
		rows = rows[:n]
	}
	return rows
}
