//! Authentication: secrets, SCRAM-SHA-256 and md5 exchanges, sans-IO (being written).
