//! zoe-session as a WASIp3 component (spin-sdk 7): the shell is being built (issue 30).
