//! tether.
