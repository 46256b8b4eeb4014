"""iWmo/iJw/iEb payloads: the message catalogue, detection from the root namespace, XSD validation.

Pure core apart from ``PayloadSchemas``, which reads XSD files from a folder it is given.
"""
