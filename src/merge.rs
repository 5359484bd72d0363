//! `stampede merge`: the results of a run's segments (`--segment i/n`)
//! merged into one exact result. (Being built: issue 11.)
