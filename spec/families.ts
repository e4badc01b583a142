// Loads every instruction family so that its executors and rules are registered.
// A new family file adds one import here.
