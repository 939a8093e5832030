package wordfreq

var stopWords = map[string]bool{
	"a": true, "an": true, "and": true, "are": true, "in": true, "is": true,
	"it": true, "of": true, "on": true, "or": true, "the": true, "to": true,
}

func isStopWord(w string) bool { return stopWords[w] }
