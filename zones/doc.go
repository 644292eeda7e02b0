// Package zones turns RFC 1035 zone files into immutable, indexed zones and
// answers lookups against them: exact matches, CNAMEs, wildcard synthesis
// (RFC 4592), empty non-terminals and delegation cuts.
//
// Loading validates a zone the way named-checkzone does and reports every
// problem with its file and line. A Store holds the current set of zones and
// is swapped atomically, so readers on the query path never lock.
//
// The package imports nothing else of dnslb's.
package zones
