mod target;
