// Package zones turns RFC 1035 zone files into immutable, indexed zones and
// answers lookups against them: exact matches, CNAMEs, wildcard synthesis
// (RFC 4592), empty non-terminals and delegation cuts.
//
// Loading validates a zone the way named-checkzone does and reports every
// problem with its file and line. A Set holds the zones of one
// configuration; nothing in it changes once built, so a server swaps whole
// sets and readers on the query path never lock.
//
// The package imports nothing else of dnslb's.
package zones
