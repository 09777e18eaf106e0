//! Every text the panel shows; the seed's dialog texts live here, once.

/// FIG. 6.
pub const LOGIN_TITLE: &str = "Enter your user ID and password";
/// FIG. 6 field.
pub const USER_ID: &str = "User ID";
/// FIG. 6 field.
pub const PASSWORD: &str = "Password";
/// FIG. 6 hint.
pub const LOGIN_HINT: &str = "Ten keys type, Tab changes box, Start logs in.";
/// Shown on FIG. 6 in the demo.
pub const DEMO_LOGIN: &str = "Demo login: user ID 1001, password 1234";

/// FIG. 7 title.
pub const MODE_TITLE: &str = "Select a mode";
/// FIG. 7 entries, numbered from 1.
pub const MODES: [&str; 6] = [
    "Copy",
    "Facsimile transmission",
    "Take out image",
    "Fax stored image",
    "Process stored image",
    "Others",
];

/// FIG. 7 after Reset: the question before logging out.
pub const LOGOUT_TITLE: &str = "Log out?";
/// FIG. 7 after Reset.
pub const LOGOUT_QUESTION: &str =
    "Log out? Start (or Reset again) = yes; any other key stays logged in.";
/// FIG. 7 after Reset: the hint.
pub const LOGOUT_HINT: &str = "Start: log out. Other keys: stay.";
/// FIG. 7: the answer was no.
pub const LOGOUT_KEPT: &str = "Still logged in.";

/// FIG. 8 title.
pub const DIST_MODE_TITLE: &str = "Select a distribution mode";
/// FIG. 8 entries, numbered from 1.
pub const DIST_MODES: [&str; 5] = [
    "Distribute document",
    "Distribute file",
    "Register with destination group",
    "Withdraw from destination group",
    "Send to a terminal in real time",
];

/// FIG. 8's fifth mode: the terminals online.
pub const TERMINALS_TITLE: &str = "Send in real time: terminals online";
/// What a connection demand's dialog takes.
pub const DEMAND_KEYS: &str = "A connection demand waits: Start accepts, Reset rejects.";
/// No other terminal is online.
pub const NO_TERMINALS: &str = "No other terminal is online.";

/// FIG. 9 title.
pub const DEST_TITLE: &str = "Select destinations";
/// FIG. 9: the entry the panel draws itself, not from the server.
pub const INDIVIDUAL_ENTRY: &str = "0: To specify individual destinations";
/// FIG. 9: the "keep a copy" switch.
pub const KEEP_COPY: &str = "* Keep in memory and print a mark sheet";

/// FIG. 10 title.
pub const INDIVIDUAL_TITLE: &str = "Select individual destinations";

/// FIG. 11 title.
pub const SPECIFY_TITLE: &str = "Select the way of specifying images";
/// FIG. 11 entries.
pub const SPECIFY_WAYS: [&str; 2] = ["Mark sheet", "Entering image ID"];
/// FIG. 11 box.
pub const IMAGE_ID: &str = "Image ID";

/// FIG. 12 title.
pub const REGISTER_TITLE: &str = "Select a group to register with";
/// FIG. 12, withdrawal.
pub const WITHDRAW_TITLE: &str = "Select a group to withdraw from";

/// Why the fax modes (FIG. 7, 2 and 4) cannot go on: the server has no gateway.
pub const NO_FAX_GATEWAY: &str = "No fax gateway on this image server: an administrator adds one (a device of kind fax-gateway).";

/// Image store title (FIG. 19).
pub const STORED_TITLE: &str = "Stored images";
/// Received list title.
pub const RECEIVED_TITLE: &str = "Received images";
/// Progress view title.
pub const PROGRESS_TITLE: &str = "Distribution";
/// The progress view after Stop, for a scan of the ADF.
pub const STOPPED_ADF: &str = "Stopped: nothing sent; the originals are back in the ADF.";
/// The progress view after Stop, for a stored image.
pub const STOPPED_STORED: &str = "Stopped: nothing sent; the stored image is unchanged.";
/// Stop once the server has the distribution.
pub const STOP_AFTER_ACCEPTED: &str =
    "Accepted by the server: delivery continues; it can't be stopped here.";
/// Stop after the last byte of a distribution went out: its commit is on its way.
pub const CANNOT_STOP: &str =
    "Too late to stop: the image is with the server and delivery continues.";
/// Stop with no job running.
pub const NOTHING_TO_STOP: &str = "Nothing to stop.";
/// Reset or Start while a distribution is scanned or sent.
pub const WAIT_OR_STOP: &str = "Sending: wait for the result, or press Stop (x) to cancel.";
/// FIG. 7, Copy chosen: what Start will do.
pub const COPY_QUESTION: &str = "Start copies the documents in the ADF to the output tray.";
/// FIG. 7, Copy chosen: the hint.
pub const COPY_HINT: &str = "Start: copy. Reset: back.";
/// FIG. 7, Copy chosen, then another key.
pub const COPY_NOT_STARTED: &str = "Copy not started.";
/// FIG. 12: Start with no group picked yet.
pub const PICK_FIRST: &str = "Check the group below, then press Start again.";
